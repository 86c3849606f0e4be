/**
 * A connected local socket. It *is* a `net.Socket` (a Duplex with backpressure and half-close,
 * usable wherever one is), with peer credentials added; we add nothing to the data path.
 */
import net from 'node:net';
import { InterprocessError, fromSystemError } from '../errors.js';
import { type NativeNamedPipe, requireNative } from '../native/addon.js';
import { isWindows } from '../platform.js';
import type { LocalSocketName } from './name.js';

/** Who is on the other end of a connection, as the kernel saw it when the connection was made. */
export interface PeerCredentials {
  /** Process id, or null where the OS does not tell it (older BSDs). */
  readonly pid: number | null;
  /** Effective user id (Unix); null on Windows. */
  readonly uid: number | null;
  /** Effective group id (Unix); null on Windows. */
  readonly gid: number | null;
}

const credentialsCache = new WeakMap<LocalSocket, PeerCredentials>();
const names = new WeakMap<LocalSocket, LocalSocketName>();

/** A connected local socket: a `net.Socket` with {@link LocalSocket.peerCredentials}. */
export class LocalSocket extends net.Socket {
  /** The name this socket connected to, or its listener's name for accepted connections. */
  get localSocketName(): LocalSocketName | undefined {
    return names.get(this);
  }

  /**
   * The pid, uid and gid of the process at the other end (Linux SO_PEERCRED, macOS
   * LOCAL_PEERCRED and LOCAL_PEERPID, BSD getpeereid). Read once, then remembered, so it still
   * answers after the socket closes. Needs the native addon.
   */
  peerCredentials(): PeerCredentials {
    const cached = credentialsCache.get(this);
    if (cached) return cached;
    if (isWindows) {
      throw new InterprocessError('ERR_SOCKET_CLOSED', 'Cannot read peer credentials: this socket was not made by listen() or connect() of interprocess (on Windows the peer\'s process id is read when the pipe connects).');
    }
    const native = requireNative('Reading peer credentials');
    const fd = (this as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) {
      throw new InterprocessError('ERR_SOCKET_CLOSED', 'Cannot read peer credentials: the socket is not connected (or already closed). Read them while it is open.');
    }
    let raw: { pid: number; uid: number; gid: number };
    try {
      raw = native.peerCredentials(fd);
    } catch (error) {
      throw fromSystemError(error, 'Cannot read peer credentials');
    }
    const credentials: PeerCredentials = Object.freeze({ pid: raw.pid > 0 ? raw.pid : null, uid: raw.uid, gid: raw.gid });
    credentialsCache.set(this, credentials);
    return credentials;
  }
}

/** Turns a socket that net.Server accepted into a LocalSocket (same object, our prototype). */
export function adoptAccepted(socket: net.Socket, name: LocalSocketName): LocalSocket {
  Object.setPrototypeOf(socket, LocalSocket.prototype);
  names.set(socket as LocalSocket, name);
  return socket as LocalSocket;
}

export function setSocketName(socket: LocalSocket, name: LocalSocketName): void {
  names.set(socket, name);
}

/**
 * Windows: a LocalSocket over a connected named pipe of ours (byte mode), its peer's process id
 * read now (the `peer` end's: 'client' on a server, 'server' on a client). The socket owns the handle.
 */
export function socketOverPipe(pipe: NativeNamedPipe, name: LocalSocketName, peer: 'client' | 'server', allowHalfOpen: boolean): LocalSocket {
  const info = pipe.info();
  const pid = peer === 'client' ? info.clientProcessId : info.serverProcessId;
  const socket = new LocalSocket({ fd: pipe.toFd(), allowHalfOpen, readable: true, writable: true });
  names.set(socket, name);
  credentialsCache.set(socket, Object.freeze({ pid: pid > 0 ? pid : null, uid: null, gid: null }));
  return socket;
}
