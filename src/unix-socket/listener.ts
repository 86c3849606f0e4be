/**
 * Listeners for connection-oriented Unix sockets (seqpacket and stream), on the same names as
 * the foundation's local sockets. The native Watcher says when connections wait; one native call
 * accepts them all. Each connection is a UnixSocket (messages, descriptors, credentials).
 */
import { type AccessCheck, type AccessRule, accessCheck, decide, markAccepted, socketFileMode } from '../access.js';
import { type PeerCredentials, readGroups, unixCredentials, withGroups } from '../credentials.js';
import { InterprocessError, abortError, fromSystemError, invalidArgument } from '../errors.js';
import { Listener, type ListenerEvents, closeOnAbort } from '../listener.js';
import type { LocalSocketName } from '../local-socket/name.js';
import { type NativeUnixSockets, type NativeWatcher, requireNative } from '../native/addon.js';
import { closeFd } from '../native/fds.js';
import { type BindOptions, checkBacklog, checkOptionsObject, checkSignal } from '../options.js';
import { type SocketFile, releaseSocketFile } from '../unix/socket-file.js';
import { checkFd, describeFd, notA, unixType } from '../service/describe.js';
import { nameFromAddress, resolveName } from './address.js';
import { descriptorOf } from './descriptor-symbol.js';
import type { HasDescriptor } from './descriptors.js';
import { bindTo, checkPlatform, checkType, openSocket } from './open.js';
import { UnixSocket, type UnixSocketOptions, unixNative } from './socket.js';

/** The type of a listening Unix socket: 'stream' (the default) or 'seqpacket'. */
export type UnixListenerType = 'seqpacket' | 'stream';

/** Options of listenUnix(). */
export interface ListenUnixOptions extends UnixSocketOptions, BindOptions {
  /** 'stream' (default) or 'seqpacket'. */
  type?: UnixListenerType;
  /**
   * Who may connect, from the kernel's peer credentials of each connection before anything of it
   * is read: 'same-user' (default), 'any', `{ uids, gids }` or a predicate (see listen()). Also
   * sets the socket file's default mode: 0o600 under 'same-user'.
   */
  allow?: AccessRule;
  /** Length of the kernel's queue of connections not yet accepted (default 511). */
  backlog?: number;
  /** Closes the listener when aborted; aborting before it listens fails with ABORT_ERR. */
  signal?: AbortSignal;
}

/** Options of {@link UnixListener.fromFd}: those of listenUnix() that apply to a socket already bound and listening. */
export interface UnixListenerFromFdOptions extends UnixSocketOptions {
  /** Who may connect (default 'same-user'), checked on each connection as by listenUnix(). */
  allow?: AccessRule;
  /** Closes the listener when aborted; aborting before it is adopted fails with ABORT_ERR (the descriptor is then still yours). */
  signal?: AbortSignal;
}

const ACCEPT_BATCH = 64;
// How long accepting pauses when the process is out of descriptors.
const ACCEPT_PAUSE_MS = 100;

/** The events of a {@link UnixListener} (see {@link ListenerEvents}). */
export type UnixListenerEvents = ListenerEvents<UnixSocket>;

/**
 * Accepts seqpacket or stream connections on a name. Each goes to the `'connection'` event if it
 * has listeners, otherwise to async iteration, queued until taken. close() stops accepting and
 * removes the socket file; connections already taken stay open. Peers the `allow` rule refuses
 * are closed at once. Events ({@link ListenerEvents}): `'connection'`, `'refused'` (credentials
 * or null, and what a predicate threw), `'error'`, `'close'`.
 */
export class UnixListener extends Listener<UnixSocket> implements HasDescriptor {
  /** The name it listens on. */
  readonly name: LocalSocketName;
  /** 'seqpacket' or 'stream'. */
  readonly type: UnixListenerType;
  readonly #fd: number;
  readonly #native: NativeUnixSockets;
  readonly #watcher: NativeWatcher;
  readonly #file: SocketFile | null;
  readonly #options: UnixSocketOptions;
  readonly #access: AccessCheck;
  #paused: NodeJS.Timeout | null = null;
  #refed = true;

  /** @internal Use {@link listenUnix}. `options`: what each accepted UnixSocket gets. */
  constructor(fd: number, type: UnixListenerType, name: LocalSocketName, file: SocketFile | null, options: UnixSocketOptions, access: AccessCheck = accessCheck(undefined)) {
    super((socket) => void socket.close());
    this.#access = access;
    this.name = name;
    this.type = type;
    this.#fd = fd;
    this.#native = unixNative('Unix listeners');
    this.#file = file;
    this.#options = options;
    const { Watcher, pollEvents } = requireNative('Unix listeners');
    this.#watcher = new Watcher(fd, (status, events) => this.#accept(status, events), true);
    this.#watcher.start(pollEvents.READABLE);
  }

  /** The descriptor, to hand this listener to another process. */
  [descriptorOf](): number {
    if (!this.listening) throw new InterprocessError('ERR_INTERPROCESS_CLOSED', 'Cannot send a closed listener: send it while it listens (close it here after sending, if this process is done with it).');
    return this.#fd;
  }

  /**
   * The listening socket's descriptor, for native APIs or to pass on (`send(data, { fds: [listener] })`,
   * storeFds()). The listener owns it: do not close it. ERR_INTERPROCESS_CLOSED once closed.
   */
  get fd(): number {
    if (!this.listening) throw new InterprocessError('ERR_INTERPROCESS_CLOSED', 'This listener is closed: it has no descriptor any more.');
    return this.#fd;
  }

  /**
   * Adopts a listening Unix stream or seqpacket socket this process was handed by number (by a
   * service manager: see listenFds(); or by a parent in spawn's stdio). It becomes non-blocking and
   * close-on-exec, and the listener owns it; its type and name are read from the socket, and
   * close() leaves the socket file in place (it belongs to whoever made it). The `allow` rule is
   * applied to every connection. Fails with ERR_INVALID_ARG_VALUE, saying what the descriptor is,
   * for anything but a listening Unix stream or seqpacket socket (the descriptor is then left open
   * and untouched), EBADF if it is not open.
   */
  static async fromFd(fd: number, options: UnixListenerFromFdOptions = {}): Promise<UnixListener> {
    checkPlatform('UnixListener.fromFd()');
    checkFd(fd);
    checkOptionsObject(options);
    const access = accessCheck(options.allow);
    const { signal } = options;
    checkSignal(signal);
    if (signal?.aborted) throw abortError(signal);
    const description = describeFd(fd, 'Adopting a listening descriptor');
    const type = unixType(description);
    if ((type !== 'stream' && type !== 'seqpacket') || !description.listening) throw notA(fd, description, 'a listening Unix stream or seqpacket socket');
    const native = unixNative('Unix listeners');
    const name = nameFromAddress(native.address(fd, false));
    if (name === null) throw invalidArgument('fd', `(descriptor ${fd}) is a listening Unix ${type} socket bound to no name`);
    try {
      native.adopt(fd); // non-blocking, close-on-exec
    } catch (error) {
      throw fromSystemError(error, `Cannot adopt descriptor ${fd}`);
    }
    const { allow: _allow, signal: _signal, ...socketOptions } = options;
    return closeOnAbort(new UnixListener(fd, type, name, null, socketOptions, access), signal);
  }

  #accept(status: number, events: number): void {
    if (!this.listening) return;
    const { pollEvents } = requireNative('Unix listeners');
    if (status < 0) {
      // The descriptor is gone (closed under us): this listener cannot accept any more.
      this.#report(new InterprocessError('ERR_INTERPROCESS_POLL', `Waiting for connections on ${this.name} failed (libuv error ${status}): the listener's descriptor was closed by something other than close(). Close the listener and listen again.`), true);
      return;
    }
    if (events & pollEvents.ERROR) {
      this.#pause(); // polling stopped on a pending socket error; accept() below takes it
    }
    let fds: number[];
    try {
      fds = this.#native.accept(this.#fd, ACCEPT_BATCH);
    } catch (error) {
      // Out of descriptors (EMFILE, ENFILE) or kernel memory, or another failure of this one
      // connection: the listener itself is fine. The connection stays queued, so the socket stays
      // readable: pause rather than spin, and accept it once descriptors are free again.
      const code = (error as NodeJS.ErrnoException).code;
      const outOfDescriptors = code === 'EMFILE' || code === 'ENFILE';
      this.#pause();
      this.#report(fromSystemError(error, `The listener on ${this.name} failed to accept`, `${outOfDescriptors ? 'The process is out of descriptors: close some, or raise its limit (ulimit -n). ' : ''}Accepting resumes in ${ACCEPT_PAUSE_MS} ms.`), false);
      return;
    }
    for (const fd of fds) {
      const credentials = this.#access.checks ? this.#admit(fd) : undefined;
      if (credentials === null) continue;
      let socket: UnixSocket;
      try {
        socket = new UnixSocket(fd, this.type, this.#options, { connected: true, origin: 'accepted', name: this.name, localName: this.name, credentials });
      } catch (error) {
        closeFd(fd);
        this.#report(fromSystemError(error, 'Cannot set up an accepted connection'), false);
        continue;
      }
      markAccepted(socket, this.#access);
      this._deliver(socket);
    }
  }

  /** Stops watching for ACCEPT_PAUSE_MS, then watches again. */
  #pause(): void {
    if (this.#paused !== null) return;
    this.#watcher.stop();
    this.#paused = setTimeout(() => {
      this.#paused = null;
      if (!this.listening) return;
      try {
        this.#watcher.start(requireNative('Unix listeners').pollEvents.READABLE);
      } catch (error) {
        this.#report(fromSystemError(error, `The listener on ${this.name} cannot wait for connections any more`, 'Close the listener and listen again.'), true);
      }
    }, ACCEPT_PAUSE_MS);
    if (!this.#refed) this.#paused.unref();
  }

  /**
   * An accept error, told without ever throwing at the event loop (a peer or the process's limits
   * cause it, not a bug): to 'error' listeners; else, if `fatal`, to a waiting iterator; else a
   * process warning. A transient error never ends iteration: the listener goes on serving.
   */
  #report(error: InterprocessError, fatal: boolean): void {
    if (this.listenerCount('error') > 0 || (fatal && this._iterating)) this._fail(error);
    else process.emitWarning(error);
  }

  /**
   * Applies the `allow` rule to an accepted descriptor: the peer's credentials if admitted (with
   * its groups if the rule needed them), null (and closed) if refused.
   */
  #admit(fd: number): PeerCredentials | null {
    let credentials: PeerCredentials | undefined;
    const refusal = decide(this.#access, () => {
      const native = requireNative('Unix listeners');
      const read = unixCredentials(native.peerCredentials(fd));
      credentials = this.#access.needsGroups ? withGroups(read, readGroups(native, fd)) : read;
      return credentials;
    });
    if (refusal === null) return credentials!;
    closeFd(fd);
    this._refuse(refusal);
    return null;
  }

  /** @internal Stops accepting and removes the socket file (if still ours). */
  protected _stop(): void {
    if (this.#paused !== null) clearTimeout(this.#paused);
    this.#paused = null;
    this.#watcher.close(); // and the descriptor with it
    if (this.#file) releaseSocketFile(this.#file);
  }

  /** @internal */
  protected _ref(keepAlive: boolean): void {
    this.#refed = keepAlive;
    if (keepAlive) this.#paused?.ref();
    else this.#paused?.unref();
    if (this.listening) this.#watcher.ref(keepAlive);
  }
}

/**
 * Listens for stream (the default) or seqpacket connections on `name` (a path string, `'@NAME'`
 * for nsName('NAME'), or a name from fsName()/nsName()), with the same safe socket files as
 * listen(): mode, takeover of stale files, EADDRINUSE for a live one. A stream listener accepts
 * the foundation's connect() clients too.
 */
export async function listenUnix(name: string | LocalSocketName, options: ListenUnixOptions = {}): Promise<UnixListener> {
  checkPlatform(`A Unix ${typeof options?.type === 'string' ? options.type : 'stream'} listener`);
  checkOptionsObject(options);
  const { type = 'stream', backlog = 511, signal } = options;
  checkType(type, ['seqpacket', 'stream']);
  const resolved = resolveName(name);
  checkBacklog(backlog);
  checkSignal(signal);
  if (signal?.aborted) throw abortError(signal);
  const access = accessCheck(options.allow);
  const native = unixNative(`Unix ${type} listeners`);
  const fd = openSocket(native, type);
  let file: SocketFile | null;
  try {
    file = await bindTo(native, fd, type, resolved, resolved.path === null ? options : { ...options, mode: socketFileMode(options.mode, access) }, backlog);
  } catch (error) {
    closeFd(fd);
    throw error;
  }
  // What each accepted connection gets: the socket options, not the listener's own.
  const { type: _type, allow: _allow, backlog: _backlog, signal: _signal, mode: _mode, takeOver: _takeOver, ...socketOptions } = options;
  return closeOnAbort(new UnixListener(fd, type, resolved, file, socketOptions, access), signal);
}
