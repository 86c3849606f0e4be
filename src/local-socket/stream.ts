/**
 * A connected local socket. It *is* a `net.Socket` (a Duplex with backpressure and half-close,
 * usable wherever one is), with its name and peer credentials added; we add nothing to the data
 * path.
 */
import net from 'node:net';
import { type PeerCredentials, type PeerCredentialsOptions, type PeerCredentialsWithGroups, groupsToRead, pipeCredentials, readGroups, unixCredentials, withGroups } from '../credentials.js';
import { InterprocessError, fromSystemError, unsupported } from '../errors.js';
import { type NativeNamedPipe, optionalNative, requireNative } from '../native/addon.js';
import { isWindows } from '../platform.js';
import type { LocalSocketName } from './name.js';

const credentialsCache = new WeakMap<LocalSocket, PeerCredentials>();
const names = new WeakMap<LocalSocket, LocalSocketName>();

/** The socket's descriptor while libuv has one (Unix), else undefined. */
function descriptorOf(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * A connected local socket: a `net.Socket` with its {@link LocalSocket.name} and
 * {@link LocalSocket.peerCredentials}. Made by {@link connect}, {@link createConnection} and
 * {@link LocalSocketListener}; a `new LocalSocket()` of your own is a plain net.Socket with no
 * name and no peer credentials.
 */
export class LocalSocket extends net.Socket {
  /**
   * The name this socket connected to, or its listener's name for an accepted connection; null
   * for a socket interprocess did not make.
   */
  get name(): LocalSocketName | null {
    return names.get(this) ?? null;
  }

  /**
   * The socket's descriptor on Unix, for native APIs or to pass on (`send(data, { fds: [socket] })`);
   * -1 while it has none (not connected yet, or closed), as Node's handle. Node owns it: do not
   * close it. On Windows a local socket is a named pipe handle, not a descriptor: this throws
   * ERR_INTERPROCESS_UNSUPPORTED.
   */
  get fd(): number {
    if (isWindows) throw unsupported("A local socket's descriptor", 'a local socket there is a named pipe, with a handle rather than a descriptor');
    return descriptorOf(this) ?? -1;
  }

  /**
   * The pid, uid and gid of the process at the other end (Linux SO_PEERCRED, macOS
   * LOCAL_PEERCRED and LOCAL_PEERPID, BSD getpeereid; on Windows the peer's process id). Read
   * when the connection is made, so it answers for as long as the object lives, also after
   * close. With `{ groups: true }` also the peer's supplementary groups (see
   * PeerCredentials.groups), read when first asked for (ask before close). Needs the native
   * addon on Unix (ERR_INTERPROCESS_NATIVE without it).
   */
  peerCredentials(options: PeerCredentialsOptions & { readonly groups: true }): PeerCredentialsWithGroups;
  peerCredentials(options?: PeerCredentialsOptions): PeerCredentials;
  peerCredentials(options?: PeerCredentialsOptions): PeerCredentials {
    const cached = credentialsCache.get(this);
    const groups = groupsToRead(options, cached);
    if (cached && !groups) return cached;
    if (isWindows) {
      if (cached) return remember(this, withGroups(cached, null)); // Windows has no groups
      throw new InterprocessError('ERR_SOCKET_CLOSED', 'Cannot read peer credentials: this socket has no peer interprocess knows of (on Windows the peer\'s process id is read when listen() or connect() of interprocess connects the pipe; createConnection() and sockets of your own have none).');
    }
    const native = requireNative('Reading peer credentials');
    const fd = descriptorOf(this);
    if (fd === undefined) {
      if (cached) {
        throw new InterprocessError('ERR_SOCKET_CLOSED', "Cannot read the peer's supplementary groups: this socket is closed, and they are read only when asked for. Call peerCredentials({ groups: true }) while it is connected (an allow: { gids } rule reads them as it accepts).");
      }
      throw new InterprocessError('ERR_SOCKET_CLOSED', 'Cannot read peer credentials: this socket never had a peer interprocess knows of (it is not connected, or was closed before it was ever connected). Sockets made by listen(), connect() and createConnection() read them as they connect.');
    }
    let credentials: PeerCredentials;
    try {
      credentials = cached ?? unixCredentials(native.peerCredentials(fd));
    } catch (error) {
      throw fromSystemError(error, 'Cannot read peer credentials');
    }
    if (groups) credentials = withGroups(credentials, readGroups(native, fd));
    return remember(this, credentials);
  }
}

function remember<T extends PeerCredentials>(socket: LocalSocket, credentials: T): T {
  credentialsCache.set(socket, credentials);
  return credentials;
}

/**
 * @internal Reads and keeps a connected socket's peer credentials now (one getsockopt), so that
 * peerCredentials() answers after close too. Without the addon, or if the kernel will not say,
 * nothing is kept and peerCredentials() says why when asked.
 */
export function recordPeerCredentials(socket: LocalSocket): void {
  if (isWindows || credentialsCache.has(socket)) return;
  const native = optionalNative();
  const fd = descriptorOf(socket);
  if (native === null || fd === undefined) return;
  try {
    credentialsCache.set(socket, unixCredentials(native.peerCredentials(fd)));
  } catch {
    /* told when peerCredentials() is called */
  }
}

/** @internal Turns a socket that net.Server accepted into a LocalSocket (same object, our prototype), its credentials read. */
export function adoptAccepted(socket: net.Socket, name: LocalSocketName): LocalSocket {
  Object.setPrototypeOf(socket, LocalSocket.prototype);
  const local = socket as LocalSocket;
  names.set(local, name);
  recordPeerCredentials(local);
  return local;
}

/** @internal A client socket has connected to `name`: its name set, its credentials read. */
export function connectedTo(socket: LocalSocket, name: LocalSocketName): void {
  names.set(socket, name);
  recordPeerCredentials(socket);
}

/** @internal Sets the name of a socket still connecting (its credentials come with connectedTo()). */
export function setSocketName(socket: LocalSocket, name: LocalSocketName): void {
  names.set(socket, name);
}

/**
 * @internal Windows: a LocalSocket over a connected named pipe of ours (byte mode), its peer's
 * process id read now (the `peer` end's: 'client' on a server, 'server' on a client). The socket
 * owns the handle.
 */
export function socketOverPipe(pipe: NativeNamedPipe, name: LocalSocketName, peer: 'client' | 'server', allowHalfOpen: boolean): LocalSocket {
  const info = pipe.info();
  const socket = new LocalSocket({ fd: pipe.toFd(), allowHalfOpen, readable: true, writable: true });
  names.set(socket, name);
  credentialsCache.set(socket, pipeCredentials(peer === 'client' ? info.clientProcessId : info.serverProcessId));
  return socket;
}
