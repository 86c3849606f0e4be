/**
 * Listeners for connection-oriented Unix sockets (seqpacket and stream), on the same names as
 * the foundation's local sockets. The native Watcher says when connections wait; one native call
 * accepts them all. Each connection is a UnixSocket (messages, descriptors, credentials).
 */
import { EventEmitter } from 'node:events';
import { type AccessCheck, type AccessRule, accessCheck, decide, markAccepted, reportRefusal, socketFileMode } from '../access.js';
import { AcceptQueue, closeOnAbort, closedSoon } from '../accept-queue.js';
import { InterprocessError, abortError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { type NativeUnixSockets, type NativeWatcher, requireNative } from '../native/addon.js';
import { closeFd } from '../native/fds.js';
import type { LocalSocketName } from '../local-socket/name.js';
import { type SocketFile, releaseSocketFile } from '../local-socket/unix/socket-file.js';
import { resolveName } from './address.js';
import { descriptorOf } from './descriptor-symbol.js';
import type { HasDescriptor } from './descriptors.js';
import { type BindOptions, bindTo, checkPlatform, checkType, openSocket } from './open.js';
import { UnixSocket, type UnixSocketOptions, unixNative } from './socket.js';

/** Options of listenUnix(). */
export interface ListenUnixOptions extends UnixSocketOptions, BindOptions {
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

const ACCEPT_BATCH = 64;
// How long accepting pauses when the process is out of descriptors.
const ACCEPT_PAUSE_MS = 100;

/**
 * Accepts seqpacket or stream connections on a name. Each goes to the `'connection'` event if it
 * has listeners, otherwise to async iteration, queued until taken. close() stops accepting and
 * removes the socket file; connections already taken stay open. Peers the `allow` rule refuses
 * are closed at once. Events: `'connection'`, `'refused'` (credentials or null, and what a
 * predicate threw), `'error'`, `'close'`.
 */
export class UnixListener extends EventEmitter implements AsyncIterable<UnixSocket>, AsyncDisposable, HasDescriptor {
  /** The name it listens on. */
  readonly name: LocalSocketName;
  /** 'seqpacket' or 'stream'. */
  readonly type: 'seqpacket' | 'stream';
  readonly #fd: number;
  readonly #native: NativeUnixSockets;
  readonly #watcher: NativeWatcher;
  readonly #file: SocketFile | null;
  readonly #options: UnixSocketOptions;
  readonly #connections = new AcceptQueue<UnixSocket>(this, (socket) => void socket.close());
  readonly #access: AccessCheck;
  #refused = 0;
  #closed = false;
  #paused: NodeJS.Timeout | null = null;
  #refed = true;

  /** @internal Use {@link listenUnix}. */
  constructor(fd: number, type: 'seqpacket' | 'stream', name: LocalSocketName, file: SocketFile | null, options: UnixSocketOptions, access: AccessCheck = accessCheck(undefined)) {
    super();
    this.#access = access;
    this.name = name;
    this.type = type;
    this.#fd = fd;
    this.#native = unixNative('Unix listeners');
    this.#file = file;
    this.#options = { maxFds: options.maxFds, passCredentials: options.passCredentials, sendHighWaterMark: options.sendHighWaterMark, highWaterMark: options.highWaterMark };
    const { Watcher, pollEvents } = requireNative('Unix listeners');
    this.#watcher = new Watcher(fd, (status, events) => this.#accept(status, events), true);
    this.#watcher.start(pollEvents.READABLE);
  }

  /** @internal The descriptor, to hand this listener to another process. */
  [descriptorOf](): number {
    if (this.#closed) throw new InterprocessError('ERR_SOCKET_CLOSED', 'Cannot send a closed listener');
    return this.#fd;
  }

  /** True until close(). */
  get listening(): boolean {
    return !this.#closed;
  }

  /** How many peers the `allow` rule has refused so far. */
  get refused(): number {
    return this.#refused;
  }

  #accept(status: number, events: number): void {
    if (this.#closed) return;
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
      if (this.#access.checks && this.#refuse(fd)) continue;
      let socket: UnixSocket;
      try {
        socket = new UnixSocket(fd, this.type, this.#options, { connected: true, origin: 'accepted', name: this.name, localName: this.name });
      } catch (error) {
        closeFd(fd);
        this.#report(fromSystemError(error, 'Cannot set up an accepted connection'), false);
        continue;
      }
      markAccepted(socket, this.#access);
      this.#connections.deliver(socket);
    }
  }

  /** Stops watching for ACCEPT_PAUSE_MS, then watches again. */
  #pause(): void {
    if (this.#paused !== null) return;
    this.#watcher.stop();
    this.#paused = setTimeout(() => {
      this.#paused = null;
      if (this.#closed) return;
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
    if (this.listenerCount('error') > 0 || (fatal && this.#connections.waiting)) this.#connections.fail(error);
    else process.emitWarning(error);
  }

  /** Applies the `allow` rule to an accepted descriptor: true (and closed) if refused. */
  #refuse(fd: number): boolean {
    const refusal = decide(this.#access, () => {
      const raw = requireNative('Unix listeners').peerCredentials(fd);
      return Object.freeze({ pid: raw.pid > 0 ? raw.pid : null, uid: raw.uid, gid: raw.gid });
    });
    if (refusal === null) return false;
    closeFd(fd);
    this.#refused++;
    reportRefusal(this, refusal);
    return true;
  }

  /** Stops accepting, removes the socket file (if still ours), ends iteration; queued connections are closed. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#paused !== null) clearTimeout(this.#paused);
    this.#paused = null;
    this.#watcher.close(); // and the descriptor with it
    if (this.#file) releaseSocketFile(this.#file);
    this.#connections.end();
    return closedSoon(this);
  }

  /** Lets the process exit while this listener is open. */
  unref(): this {
    this.#refed = false;
    this.#paused?.unref();
    if (!this.#closed) this.#watcher.ref(false);
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.#refed = true;
    this.#paused?.ref();
    if (!this.#closed) this.#watcher.ref(true);
    return this;
  }

  /** Accepted connections, in order. Leaving the loop (break, return, throw) closes the listener. */
  [Symbol.asyncIterator](): AsyncIterator<UnixSocket> {
    return this.#connections.iterator(() => this.close());
  }

  /** `await using listener = await listenUnix(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Listens for seqpacket or stream connections on `name` (a path string, or a name from
 * fsName()/nsName()), with the same safe socket files as listen(): mode, takeover of stale files,
 * EADDRINUSE for a live one. A stream listener accepts the foundation's connect() clients too.
 */
export async function listenUnix(type: 'seqpacket' | 'stream', name: string | LocalSocketName, options: ListenUnixOptions = {}): Promise<UnixListener> {
  checkPlatform(`A Unix ${type} listener`);
  checkType(type, ['seqpacket', 'stream']);
  const resolved = resolveName(name);
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { backlog = 511, signal } = options;
  if (!Number.isInteger(backlog) || backlog < 0) throw invalidArgument('options.backlog', `must be a non-negative integer; got ${String(backlog)}`);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
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
  return closeOnAbort(new UnixListener(fd, type, resolved, file, options, access), signal);
}
