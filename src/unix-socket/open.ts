/**
 * Opening Unix sockets: creating the descriptor, binding it to a name (abstract names exactly,
 * socket files through the foundation's safe socket-file logic), connecting with the same
 * wait/timeout/signal as local sockets, and socket pairs.
 */
import fs from 'node:fs';
import { type AccessRule, accessCheck, socketFileMode } from '../access.js';
import { abortError, fromSystemError, invalidArgument, invalidType, unsupported } from '../errors.js';
import { type NativeUnixSockets, requireNative } from '../native/addon.js';
import { closeFdQuietly } from '../native/fds.js';
import { type RetryOptions, connectWithRetry } from '../socket-connect.js';
import type { LocalSocketName } from '../local-socket/name.js';
import { type ProbeResult, type SocketFile, type SocketFileBinder, bindSocketFile, ensurePrivateDirectory, probeOutcome, releaseSocketFile } from '../unix/socket-file.js';
import { type BindOptions, checkMode } from '../options.js';
import { isWindows } from '../platform.js';
import { addressOf, resolveName } from './address.js';
import { TYPE_NUMBER, UnixSocket, type UnixSocketOptions, type UnixSocketType, adoptUnixSocket, checkSignal, unixNative } from './socket.js';

/** Throws on Windows, which has no Unix socket types to offer here. */
export function checkPlatform(what: string): void {
  if (isWindows) {
    throw unsupported(what, 'Windows has only stream Unix sockets, without descriptor passing; use listen()/connect() for local sockets (named pipes)');
  }
}

export function checkType(type: unknown, allowed: readonly UnixSocketType[]): asserts type is UnixSocketType {
  if (typeof type !== 'string' || !allowed.includes(type as UnixSocketType)) {
    // String(), not JSON.stringify: that throws on a BigInt, and says undefined for a symbol.
    const got = typeof type === 'string' ? `'${type}'` : typeof type === 'symbol' ? 'a symbol' : `${String(type)} (${typeof type})`;
    throw invalidArgument('type', `must be ${allowed.map((t) => `'${t}'`).join(' or ')}; got ${got}`);
  }
}

/** A new non-blocking socket of `type`; ERR_INTERPROCESS_UNSUPPORTED where the OS lacks the type. */
export function openSocket(native: NativeUnixSockets, type: UnixSocketType): number {
  try {
    return native.open(TYPE_NUMBER[type]);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EPROTONOSUPPORT' || code === 'ESOCKTNOSUPPORT' || code === 'EPROTOTYPE' || code === 'EAFNOSUPPORT') {
      throw unsupported(`A Unix ${type} socket`, `this OS does not offer the type (${code})`);
    }
    throw fromSystemError(error, `Cannot create a Unix ${type} socket`);
  }
}

/** Connects a fresh socket of this type to a socket file: is anything bound there? */
function nativeProbe(native: NativeUnixSockets, type: UnixSocketType): (socketPath: string) => Promise<ProbeResult> {
  return async (socketPath) => {
    const fd = openSocket(native, type);
    try {
      native.connect(fd, Buffer.from(socketPath));
      return 'live';
    } catch (error) {
      return probeOutcome(error as NodeJS.ErrnoException, socketPath);
    } finally {
      closeFdQuietly(fd);
    }
  };
}

/**
 * Binds `fd` to `name` (and listens with `backlog`, for a listener). Returns the socket file it
 * made, if any: the caller releases it on close.
 */
export async function bindTo(native: NativeUnixSockets, fd: number, type: UnixSocketType, name: LocalSocketName, options: BindOptions, backlog: number | null): Promise<SocketFile | null> {
  const { mode } = options;
  checkMode(mode, name);
  const bind = (address: Buffer, socketMode: number | undefined) => {
    if (socketMode !== undefined) {
      try {
        fs.fchmodSync(fd, socketMode); // Linux: the socket file is born with this mode (less the umask)
      } catch {
        /* other OSes: the chmod after bind sets it */
      }
    }
    native.bind(fd, address);
    if (backlog !== null) native.listen(fd, backlog);
  };
  if (name.path === null) {
    try {
      bind(addressOf(name), undefined);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw fromSystemError(error, `Cannot bind to ${name}`, code === 'EADDRINUSE' ? 'Another socket has this name: close it first or choose another name.' : undefined, { address: name.address });
    }
    return null;
  }
  if (name.privateDirectory !== null) await ensurePrivateDirectory(name.privateDirectory, name.path);
  const binder: SocketFileBinder = {
    bind: (socketPath, socketMode) => bind(Buffer.from(socketPath), socketMode),
    abort: () => {}, // the caller closes the descriptor, which unbinds it
    probe: nativeProbe(native, type),
    // A datagram socket's bound path is what receivers reply to: it must be the real one.
    inPlace: type === 'datagram',
  };
  return bindSocketFile(name.path, { mode, takeOver: options.takeOver }, binder);
}

/** Options of bindDatagram(). */
export interface DatagramOptions extends UnixSocketOptions, BindOptions {
  /**
   * With `passCredentials` (Linux): whose messages are received, from each message's credentials
   * ('same-user' by default, 'any', `{ uids, gids }`, a predicate); the others are dropped,
   * counted in `socket.refused` and reported with a `'refused'` event. Without credentials a
   * datagram socket has only its file's mode (0o600 by default; an abstract name has none): then
   * only 'any' or 'same-user' is accepted here. See docs/security.md.
   */
  allow?: AccessRule;
  /** Linux: without a name, bind to a unique abstract name the kernel picks (autobind). */
  autobind?: boolean;
  /** The default peer for send() without `to` (see UnixSocket.connect). */
  connect?: string | LocalSocketName;
  /** Gives up binding (making a private directory, taking over a stale file): an AbortError, nothing left bound. */
  signal?: AbortSignal;
}

/**
 * A datagram socket, bound to `name` (a socket file or, with nsName(), a Linux abstract name) so
 * that others can send to it, or unbound (null) to send only (and receive replies if connected
 * or autobound). Fails with EADDRINUSE when a live socket has the name.
 */
export async function bindDatagram(name: string | LocalSocketName | null = null, options: DatagramOptions = {}): Promise<UnixSocket> {
  checkPlatform('A Unix datagram socket');
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const resolved = name === null ? null : resolveName(name);
  if (resolved !== null && options.autobind) throw invalidArgument('options.autobind', 'applies only without a name');
  const access = accessCheck(options.allow);
  if (!options.passCredentials && access.checks && access.rule !== 'same-user') {
    throw invalidArgument('options.allow', 'is decided from each message\'s credentials: pass passCredentials: true too (Linux). Without them a datagram socket is guarded only by its file\'s mode.');
  }
  const mode = resolved?.path == null ? options.mode : socketFileMode(options.mode, access);
  const signal = checkSignal(options.signal, 'options.signal');
  if (signal?.aborted) throw abortError(signal);
  const native = unixNative('Unix datagram sockets');
  const fd = openSocket(native, 'datagram');
  let socket: UnixSocket | null = null;
  let file: SocketFile | null = null;
  try {
    if (resolved !== null) {
      file = await bindTo(native, fd, 'datagram', resolved, { ...options, mode }, null);
    } else if (options.autobind) {
      if (process.platform !== 'linux') throw unsupported('autobind', 'only Linux picks a name for an unbound socket; bind to a name instead');
      native.bind(fd, null);
    }
    const access_ = options.passCredentials && access.checks ? access : null;
    socket = new UnixSocket(fd, 'datagram', options, { file, name: resolved, localName: resolved ?? undefined, access: access_ });
    file = null; // the socket owns it now
    if (signal?.aborted) throw abortError(signal);
    if (options.connect !== undefined) socket.connect(options.connect);
    return socket;
  } catch (error) {
    if (socket) socket.destroy();
    else {
      closeFdQuietly(fd);
      if (file) releaseSocketFile(file);
    }
    throw error;
  }
}

/** Options of connectUnix(). */
export interface ConnectUnixOptions extends UnixSocketOptions, RetryOptions {
  /** The socket type: 'stream' (default) or 'seqpacket'. */
  type?: 'seqpacket' | 'stream';
}

/**
 * Connects a stream (default) or seqpacket socket to the listener at `name` (listenUnix(), or for
 * streams any Unix stream listener: the foundation's listen(), socat, Python...). As connect():
 * `wait`, `timeout`, `signal`; ENOENT or ECONNREFUSED when nothing listens.
 */
export async function connectUnix(name: string | LocalSocketName, options: ConnectUnixOptions = {}): Promise<UnixSocket> {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const type = options.type ?? 'stream';
  checkType(type, ['seqpacket', 'stream']);
  checkPlatform(`A Unix ${type} socket`);
  const resolved = resolveName(name);
  const native = unixNative(`Unix ${type} sockets`);
  return connectWithRetry(resolved, options, async () => {
    const fd = openSocket(native, type);
    try {
      if (!native.connect(fd, addressOf(resolved))) {
        await writable(fd);
        native.takeError(fd);
      }
      return new UnixSocket(fd, type, options, { connected: true, name: resolved, remoteName: resolved });
    } catch (error) {
      closeFdQuietly(fd); // not owned by a socket: a constructor that throws owns nothing
      throw error;
    }
  });
}

/** Waits until a connecting socket is writable (its connect finished, one way or the other). */
function writable(fd: number): Promise<void> {
  return new Promise((resolve) => {
    const { Watcher, pollEvents } = requireNative('Unix sockets');
    const watcher = new Watcher(fd, () => {
      watcher.close();
      resolve();
    });
    watcher.start(pollEvents.WRITABLE);
  });
}

/** Options of unixSocketPair(). */
export interface UnixSocketPairOptions extends UnixSocketOptions {
  /** The socket type: 'stream' (default), 'seqpacket' or 'datagram'. */
  type?: UnixSocketType;
}

/**
 * Two connected sockets (socketpair(2); a stream pair unless `type` says otherwise), as a tuple
 * of symmetric ends: hand one to a child process or a worker, keep the other. Peer credentials
 * are recorded for every type.
 */
export function unixSocketPair(options: UnixSocketPairOptions = {}): [UnixSocket, UnixSocket] {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const type = options.type ?? 'stream';
  checkType(type, ['datagram', 'seqpacket', 'stream']);
  checkPlatform('A Unix socket pair');
  const native = unixNative('Unix socket pairs');
  let fds: [number, number];
  try {
    fds = native.pair(TYPE_NUMBER[type]);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EPROTONOSUPPORT' || code === 'EOPNOTSUPP') throw unsupported(`A Unix ${type} socket pair`, `this OS does not offer the type (${code})`);
    throw fromSystemError(error, `Cannot create a Unix ${type} socket pair`);
  }
  let first: UnixSocket;
  try {
    first = new UnixSocket(fds[0], type, options, { connected: true });
  } catch (error) {
    fds.forEach(closeFdQuietly); // a constructor that throws owns nothing
    throw fromSystemError(error, 'Cannot create a socket pair'); // passes our own errors through, adds context to the addon's
  }
  try {
    return [first, new UnixSocket(fds[1], type, options, { connected: true })];
  } catch (error) {
    first.destroy(); // it owns fds[0]
    closeFdQuietly(fds[1]);
    throw fromSystemError(error, 'Cannot create a socket pair'); // passes our own errors through, adds context to the addon's
  }
}

/**
 * Adopts a Unix socket descriptor this process was handed (a socket-pair end in a child's stdio,
 * say): it becomes non-blocking and close-on-exec, and the returned socket owns it. Its type is
 * read from the descriptor.
 */
export function unixSocketFromFd(fd: number, options: UnixSocketOptions = {}): UnixSocket {
  checkPlatform('A Unix socket');
  if (!Number.isInteger(fd) || fd < 0) throw invalidArgument('fd', `must be a descriptor (a non-negative integer); got ${String(fd)}`);
  const native = unixNative('Unix sockets');
  let description;
  try {
    description = native.describe(fd);
  } catch (error) {
    throw fromSystemError(error, `Cannot adopt descriptor ${fd}`);
  }
  if (!description.unix || description.socketType === 0 || description.listening) {
    throw invalidArgument('fd', `is a ${description.kind}${description.listening ? ' (listening)' : ''}, not a connected or datagram Unix socket`);
  }
  return adoptUnixSocket(fd, description.socketType, options);
}
