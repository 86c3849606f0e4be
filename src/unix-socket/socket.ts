/**
 * A Unix domain socket of any type, driven on Node's loop: the native Watcher says when the
 * socket is ready, and one native call then moves a whole batch of messages. The parts: the send
 * queue (send-queue.ts), the reading of a batch (reader.ts, metadata.ts) into the receive queue
 * (receive-queue.ts), read ahead only as far as `highWaterMark` so a slow reader holds the sender
 * back through the kernel instead of growing memory; this class ties them to the Watcher, the
 * events and the socket's lifetime.
 *
 * Framing is the kernel's: a datagram or seqpacket message arrives exactly as it was sent; on a
 * stream socket a message is whatever one read returned (the bytes are a stream; descriptors
 * arrive with the bytes they were sent with).
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { AccessCheck } from '../access.js';
import { InterprocessError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { type NativeUnixSockets, type NativeWatcher, requireNative } from '../native/addon.js';
import type { LocalSocketName } from '../local-socket/name.js';
import { type PeerCredentials, type PeerCredentialsOptions, type PeerCredentialsWithGroups, groupsToRead, readGroups, withGroups } from '../credentials.js';
import { type SocketFile, releaseSocketFile } from '../unix/socket-file.js';
import { addressOf, nameFromAddress, resolveName } from './address.js';
import { closedError, noPeer, passCredentials, positiveInteger, readPeer, sendOptions, toBytes, waitSignal } from './checks.js';
import { descriptorOf } from './descriptor-symbol.js';
import type { HasDescriptor } from './descriptors.js';
import { type UnixDuplexOptions, duplexOf } from './duplex.js';
import { MARKS } from './marks.js';
import { type NativeState, sockets } from './native-state.js';
import { Receiver } from './receiver.js';
import { Sender } from './sender.js';
import { type SendOptions, TYPE_NAME, TYPE_NUMBER, type UnixMessage, type UnixSocketEvents, type UnixSocketIteratorOptions, type UnixSocketOptions, type UnixSocketType, type UnixWaitOptions } from './types.js';

/** @internal */
export { TYPE_NUMBER } from './types.js';
export type { MessageCredentials, SendOptions, UnixMessage, UnixSocketEvents, UnixSocketIteratorOptions, UnixSocketOptions, UnixSocketType, UnixWaitOptions } from './types.js';
/** @internal */
export { unixNative } from './native-state.js';
/** @internal */
export { checkSignal, closedError } from './checks.js';


/** @internal How a socket came to be, for the constructor. */
export interface SocketOrigin {
  /** Connected to a peer (connectUnix, accepted, a pair; adopted ones that are). Default false. */
  connected?: boolean;
  /** made (default): by us; accepted: by a listener; adopted: a descriptor from elsewhere. */
  origin?: 'made' | 'accepted' | 'adopted';
  /** `.name`: the listener's name (accepted), the name connected or bound to. */
  name?: LocalSocketName | null;
  /** The address this socket is bound to, when known (otherwise read from the kernel). */
  localName?: LocalSocketName | null;
  /** The peer's address, when known. */
  remoteName?: LocalSocketName | null;
  /** The socket file bound for it, removed at close. */
  file?: SocketFile | null;
  /** Datagram receivers with credentials: the `allow` rule each message must pass. */
  access?: AccessCheck | null;
  /** The peer's credentials, when the listener read them already (for its `allow` rule). */
  credentials?: PeerCredentials;
}

/**
 * A Unix domain socket: datagram, seqpacket or stream. Make one with bindDatagram(),
 * connectUnix(), listenUnix() (accepted connections) or unixSocketPair().
 *
 * Receive with the `'message'` event, `for await (const message of socket)` or `receive()`;
 * reading starts only when one of them asks. Send with `send()`, which resolves once the kernel
 * has the message. `close()` sends what is queued, then closes; `destroy()` closes at once.
 * Events: see {@link UnixSocketEvents}.
 */
export class UnixSocket extends EventEmitter<UnixSocketEvents> implements AsyncIterable<UnixMessage>, AsyncDisposable, HasDescriptor {
  /** The socket's type. */
  readonly type: UnixSocketType;
  readonly #typeNumber: number;
  readonly #fd: number;
  readonly #native: NativeUnixSockets;
  readonly #pollEvents: NativeState['pollEvents'];
  readonly #watcher: NativeWatcher;
  #watching = 0;
  #destroyed = false;
  #closing: Promise<void> | null = null;
  #closeEvent: Promise<void> | null = null;
  #made: boolean;
  #file: SocketFile | null;
  #name: LocalSocketName | null;
  #localName: LocalSocketName | null | undefined;
  #remoteName: LocalSocketName | null | undefined;
  #connected: boolean;
  #credentials: PeerCredentials | InterprocessError;
  // SO_PASSCRED: on because the user asked (true), off (false), unknown (null: an adopted
  // descriptor), or on only to mark real seqpacket messages ('marking'). See #mark.
  #passCredentials: boolean | null | 'marking';
  /** SO_TIMESTAMP is on (a seqpacket socket we made or accepted, on Linux): see #mark. */
  #stamped = false;

  readonly #sender: Sender;
  #ended = false;

  readonly #receiver: Receiver;
  #duplex: Duplex | null = null;

  /**
   * @internal Use bindDatagram(), connectUnix(), listenUnix() or unixSocketPair(). Takes `fd`
   * over, unless it throws: then the caller still owns it.
   */
  constructor(fd: number, type: UnixSocketType, options: UnixSocketOptions = {}, from: SocketOrigin = {}) {
    super();
    const { native, pollEvents } = sockets('Unix sockets');
    this.#pollEvents = pollEvents;
    const origin = from.origin ?? 'made';
    this.type = type;
    this.#typeNumber = TYPE_NUMBER[type];
    this.#native = native;
    this.#connected = from.connected ?? false;
    this.#made = origin === 'made';
    this.#name = from.name ?? null;
    this.#localName = from.localName;
    this.#remoteName = from.remoteName;
    this.#file = from.file ?? null;
    const maxFds = positiveInteger(options.maxFds, 'options.maxFds', 32, native.MAX_FDS);
    const sendHighWaterMark = Math.max(1, positiveInteger(options.sendHighWaterMark, 'options.sendHighWaterMark', 4096));
    const highWaterMark = Math.max(1, positiveInteger(options.highWaterMark, 'options.highWaterMark', 1024));
    if (options.passCredentials) passCredentials(native, fd, true);
    this.#passCredentials = options.passCredentials ? true : origin === 'adopted' ? null : false;
    if (type === 'seqpacket' && origin !== 'adopted' && process.platform === 'linux') {
      // SO_TIMESTAMP: every real message then carries a timestamp and the end none, so reads
      // tell an empty message from the end with no syscall of their own (see #mark and
      // native/unix/receive.c). An adopted descriptor is the caller's: its options stay as they are.
      try {
        native.stampMessages(fd);
        this.#stamped = true;
      } catch {
        if (origin === 'accepted' && !options.passCredentials) {
          // An accepted socket has the listener's address, so SO_PASSCRED cannot autobind it:
          // leave it on for good instead. (Otherwise reads toggle it.)
          try {
            passCredentials(native, fd, true);
            this.#passCredentials = 'marking';
          } catch {
            // Then reads toggle it.
          }
        }
      }
    }
    this.#credentials = from.credentials ?? (this.#connected ? readPeer(fd, type) : noPeer());
    this.#sender = new Sender({
      type,
      typeNumber: this.#typeNumber,
      fd,
      sendHighWaterMark,
      emitter: this as EventEmitter,
      isDestroyed: () => this.#destroyed,
      peer: () => this.#remoteName,
      updateWatcher: () => this.#updateWatcher(),
    });
    this.#receiver = new Receiver({
      type,
      fd,
      typeNumber: this.#typeNumber,
      maxFds,
      highWaterMark,
      access: from.access ?? null,
      emitter: this as EventEmitter,
      mark: () => this.#mark(),
      isConnected: () => this.#connected,
      isDestroyed: () => this.#destroyed,
      updateWatcher: () => this.#updateWatcher(),
      failSends: (error) => this.#sender.failAll(error),
    });
    // From here the watcher owns the descriptor: destroy, worker teardown and collection close it.
    // Everything that can throw comes before, so a constructor that throws owns nothing.
    this.#watcher = new (requireNative('Unix sockets').Watcher)(fd, (status, events) => this.#onReady(status, events), true);
    this.#fd = fd;
    const emitter = this as EventEmitter;
    emitter.on('newListener', (event) => {
      if (event === 'message') queueMicrotask(() => this.#receiver.toListeners());
    });
    emitter.on('removeListener', (event) => {
      if (event === 'message') this.#updateWatcher();
    });
  }

  /** The descriptor, for sending this socket to another process. */
  [descriptorOf](): number {
    if (this.#destroyed) throw closedError('send a closed socket');
    return this.#fd;
  }

  /**
   * Datagram sockets bound with `passCredentials` and an `allow` rule: how many messages were
   * dropped because their sender's credentials were refused (each reported with a `'refused'`
   * event). 0 on other sockets.
   */
  get refused(): number {
    return this.#receiver.refused;
  }

  /**
   * The descriptor (for spawn's stdio, or other native APIs). The socket owns it: do not close it,
   * and expect it to be closed by close() (or when the socket is collected while idle).
   */
  get fd(): number {
    if (this.#destroyed) throw closedError('read the descriptor');
    return this.#fd;
  }

  /** True once the socket is closed (by close(), once its queue is sent, or by destroy()). */
  get closed(): boolean {
    return this.#destroyed;
  }

  /**
   * The name this socket belongs to: the name connectUnix() connected to, the listener's name for
   * an accepted connection, the name bindDatagram() bound to (else the one its connect() gave);
   * null for socket pairs and adopted descriptors. Its addresses are localName and remoteName.
   */
  get name(): LocalSocketName | null {
    return this.#name;
  }

  /** The name this socket is bound to (null when unbound or unnamed). */
  get localName(): LocalSocketName | null {
    if (this.#localName === undefined) this.#localName = this.#destroyed ? null : nameFromAddress(this.#native.address(this.#fd, false));
    return this.#localName;
  }

  /** The name of the connected peer (null when unconnected or when the peer is unnamed). */
  get remoteName(): LocalSocketName | null {
    if (this.#remoteName === undefined) {
      try {
        this.#remoteName = this.#destroyed ? null : nameFromAddress(this.#native.address(this.#fd, true));
      } catch {
        this.#remoteName = null; // ENOTCONN: no peer
      }
    }
    return this.#remoteName;
  }

  /** Messages waiting to be sent. */
  get sendQueueLength(): number {
    return this.#sender.length;
  }

  /**
   * Datagram sockets: sets the default peer for send() without `to`, and receives only from it.
   * Fails with ENOENT or ECONNREFUSED when nothing is bound there.
   */
  connect(name: string | LocalSocketName): this {
    if (this.#destroyed) throw closedError('connect');
    if (this.type !== 'datagram') throw invalidArgument('this', `is a ${this.type} socket: use connectUnix() to connect one`);
    const resolved = resolveName(name);
    try {
      this.#native.connect(this.#fd, addressOf(resolved));
    } catch (error) {
      throw fromSystemError(error, `Cannot connect the datagram socket to ${resolved}`, 'Nothing is bound there: bind the receiver first.', { address: resolved.address });
    }
    this.#remoteName = resolved;
    this.#connected = true;
    if (this.#made) this.#name ??= resolved;
    this.#credentials = readPeer(this.#fd, this.type);
    return this;
  }

  /** Linux: receive each sender's credentials with its messages (SO_PASSCRED), or stop. */
  setPassCredentials(on: boolean): this {
    if (this.#destroyed) throw closedError('set passCredentials');
    passCredentials(this.#native, this.#fd, on);
    this.#passCredentials = on;
    return this;
  }

  /**
   * The pid, uid and gid of the connected peer, as the kernel recorded them when the connection
   * (or the socket pair) was made. Read when the socket connects, so it answers after close too.
   * Throws ERR_INTERPROCESS_NO_CREDENTIALS for a socket that never had a peer (an unconnected
   * datagram socket) or whose peer the kernel recorded none for (a datagram socket connected
   * with connect()). With `{ groups: true }` also the peer's supplementary groups (see
   * PeerCredentials.groups), read when first asked for: ask before close
   * (ERR_INTERPROCESS_CLOSED after, unless asked before).
   */
  peerCredentials(options: PeerCredentialsOptions & { readonly groups: true }): PeerCredentialsWithGroups;
  peerCredentials(options?: PeerCredentialsOptions): PeerCredentials;
  peerCredentials(options?: PeerCredentialsOptions): PeerCredentials {
    const known = this.#credentials;
    const groups = groupsToRead(options, known instanceof Error ? undefined : known);
    if (known instanceof Error) throw known;
    if (!groups) return known;
    if (this.#destroyed) {
      throw new InterprocessError('ERR_INTERPROCESS_CLOSED', "Cannot read the peer's supplementary groups: the socket is closed, and they are read only when asked for. Call peerCredentials({ groups: true }) while it is open (an allow: { gids } rule reads them as it accepts).");
    }
    this.#credentials = withGroups(known, readGroups(requireNative('Reading peer credentials'), this.#fd));
    return this.#credentials;
  }

  // ---- sending ----

  /**
   * Sends one message: a datagram or seqpacket message exactly, or bytes on a stream, with
   * descriptors if given. Resolves once the kernel has it; messages go in the order of the calls.
   * When the kernel's buffer is full the message waits in the send queue (backpressure): past
   * `sendHighWaterMark` waiting messages, await drain() before sending more, as with a Node
   * stream's write(). `signal` cancels a send still waiting (see SendOptions.signal).
   */
  send(data: Uint8Array | ArrayBufferView | ArrayBuffer | string, options?: SendOptions): Promise<void> {
    try {
      return this.#enqueue(toBytes(data), options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #enqueue(bytes: Uint8Array, options: SendOptions | undefined): Promise<void> {
    if (this.#destroyed || this.#closing !== null) throw closedError('send');
    if (this.#ended) throw new InterprocessError('EPIPE', 'Cannot send: end() was called on this socket');
    const { address, fds, credentials, signal } = sendOptions(options, this.type, this.#native.MAX_FDS);
    if (address === null && this.type === 'datagram' && !this.#connected) {
      throw invalidArgument('options.to', 'is required: this datagram socket has no default peer (connect() it, or pass { to })');
    }
    if (bytes.length === 0 && this.type === 'stream') {
      if (fds !== null || credentials !== null) throw invalidArgument('data', `must hold at least one byte when ${fds !== null ? 'descriptors go' : 'credentials go'} with it on a stream socket (they travel with the bytes)`);
      return Promise.resolve();
    }
    return this.#sender.push(bytes, address, fds, credentials, signal);
  }

  /** Resolves once the send queue is at most half of sendHighWaterMark again (at once if it is). */
  drain(options?: UnixWaitOptions): Promise<void> {
    try {
      return this.#sender.drain(waitSignal(options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Stream and seqpacket sockets: sends what is queued, then tells the peer nothing more will come
   * (it reads the end). Receiving goes on until close().
   */
  async end(): Promise<void> {
    if (this.type === 'datagram') throw invalidArgument('this', 'is a datagram socket: it has no end; close() it');
    if (this.#destroyed || this.#ended) return;
    this.#ended = true;
    await this.#sender.settled();
    if (this.#destroyed) return;
    try {
      this.#native.shutdown(this.#fd);
    } catch (error) {
      throw fromSystemError(error, 'Cannot end the socket');
    }
  }

  // ---- receiving ----

  #onReady(status: number, events: number): void {
    if (this.#destroyed) return;
    // An error stops polling (the Watcher's ERROR: a pending socket error, or a status < 0).
    const { READABLE, WRITABLE, ERROR } = this.#pollEvents;
    const stopped = status < 0 || (events & ERROR) !== 0;
    if (stopped) this.#watching = 0;
    if (status < 0) {
      // The descriptor itself cannot be polled any more (closed under us): nothing more can come or go.
      const failure = new InterprocessError('ERR_INTERPROCESS_POLL', `Waiting on the ${this.type} socket failed (libuv error ${status}): its descriptor was closed by something other than this socket. Close the socket; do not close socket.fd yourself.`);
      this.#sender.failAll(failure);
      this.#receiver.fail(failure);
      return;
    }
    if (events & WRITABLE) this.#sender.onWritable();
    if (events & READABLE) this.#receiver.onReadable();
    if (stopped) this.#updateWatcher();
  }

  /** The native receive's `mark` for what SO_PASSCRED is now (see marks.ts). */
  #mark(): number {
    if (this.type !== 'seqpacket') return MARKS.USER_ON;
    if (this.#stamped) return MARKS.STAMP;
    const state = this.#passCredentials;
    return state === true ? MARKS.USER_ON : state === false ? MARKS.OFF : state === null ? MARKS.UNKNOWN : MARKS.ON;
  }

  #updateWatcher(): void {
    if (this.#destroyed) return;
    const { READABLE, WRITABLE } = this.#pollEvents;
    const mask = (this.#receiver.wantsToRead() ? READABLE : 0) | (this.#sender.waitsForWritable ? WRITABLE : 0);
    if (mask === this.#watching) return;
    this.#watching = mask;
    if (mask === 0) this.#watcher.stop();
    else this.#watcher.start(mask);
  }

  /**
   * The next message; null once the peer has finished sending (stream, seqpacket) or the socket
   * is closed. Rejects with a receive error (a truncated message, cut descriptors, a reset
   * connection) in the order it happened; the socket stays usable after it. `signal` stops the
   * wait (an AbortError); no message is lost by it.
   */
  receive(options?: UnixWaitOptions): Promise<UnixMessage | null> {
    let signal: AbortSignal | undefined;
    try {
      signal = waitSignal(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#receiver.receive(signal);
  }

  /**
   * Messages until the end or close. Leaving the loop early (break, return, throw) closes the
   * socket, as leaving a loop over a Node Readable destroys it; `iterator({ closeOnReturn: false })`
   * leaves it open, and what the loop did not read stays for the next loop or receive().
   */
  async *iterator(options: UnixSocketIteratorOptions = {}): AsyncGenerator<UnixMessage, void, undefined> {
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
    const closeOnReturn = options.closeOnReturn ?? true;
    let finished = false;
    try {
      for (;;) {
        const message = await this.receive();
        if (message === null) {
          finished = true;
          return;
        }
        yield message;
      }
    } finally {
      if (!finished && closeOnReturn) await this.close();
    }
  }

  /** `for await (const message of socket)`: iterator() with its defaults (leaving early closes). */
  [Symbol.asyncIterator](): AsyncGenerator<UnixMessage, void, undefined> {
    return this.iterator();
  }

  // ---- lifetime ----

  /**
   * Closes the socket gracefully: sends what is queued (send() no longer takes more: it rejects
   * with ERR_INTERPROCESS_CLOSED), then closes as destroy() does. Receiving goes on meanwhile.
   * Resolves after `'close'`; a second call returns the same promise. A peer that never reads
   * keeps it waiting: destroy() then closes at once.
   */
  close(): Promise<void> {
    this.#closing ??= this.#closeGracefully();
    return this.#closing;
  }

  async #closeGracefully(): Promise<void> {
    while (!this.#destroyed && this.#sender.length > 0) await this.#sender.settled();
    this.destroy();
    await this.#closeEvent;
  }

  /**
   * Closes the socket at once: queued sends reject with ERR_INTERPROCESS_CLOSED, receive() and
   * iteration end, a socket file of ours is removed, descriptors read ahead but never taken are
   * closed. Emits `'error'` (with `error`, if given: as on any EventEmitter, an 'error' nobody
   * listens to is thrown) and then `'close'`, on the next tick. Idempotent.
   */
  destroy(error?: Error): this {
    if (this.#destroyed) return this;
    this.#destroyed = true;
    this.#watcher.close(); // stops polling, then closes the descriptor
    this.#sender.close(closedError('send this message'));
    this.#receiver.close();
    if (this.#file) releaseSocketFile(this.#file);
    this.#closeEvent = new Promise((resolve) => {
      process.nextTick(() => {
        if (error !== undefined) this.emit('error', error);
        this.emit('close');
        resolve();
      });
    });
    return this;
  }

  /**
   * Stream sockets: a `stream.Duplex` over this socket (made once; the same one each call), for
   * pipe(), http, tls or a Channel. Its writes are send()s, its reads the received bytes, with
   * backpressure both ways; end() shuts down the sending side, and destroy() closes the socket.
   * Descriptors that arrive are closed (a Duplex carries bytes only): to pass descriptors, use
   * the socket itself or a Channel made on it. Use the Duplex or the socket's own receiving
   * (receive(), 'message', iteration), not both. `options` apply to the first call.
   */
  toDuplex(options?: UnixDuplexOptions): Duplex {
    if (this.type !== 'stream') throw invalidArgument('this', `is a ${this.type} socket: only a stream socket is a byte stream`);
    if (this.#destroyed) throw closedError('make a Duplex');
    this.#duplex ??= duplexOf(this, options);
    return this.#duplex;
  }

  /** Lets the process exit while this socket waits (as net.Socket's unref). */
  unref(): this {
    if (!this.#destroyed) this.#watcher.ref(false);
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    if (!this.#destroyed) this.#watcher.ref(true);
    return this;
  }

  /** `await using socket = ...` closes it (gracefully) at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** @internal Wraps a Unix socket descriptor received from elsewhere (see ReceivedDescriptor). */
export function adoptUnixSocket(fd: number, socketType: number, options?: UnixSocketOptions): UnixSocket {
  const type = TYPE_NAME[socketType];
  if (!type) throw invalidArgument('descriptor', 'is not a Unix datagram, seqpacket or stream socket');
  const { native } = sockets('Unix sockets');
  try {
    native.adopt(fd);
  } catch (error) {
    throw fromSystemError(error, 'Cannot adopt the socket');
  }
  let connected = true;
  try {
    native.address(fd, true);
  } catch {
    connected = false;
  }
  return new UnixSocket(fd, type, options, { connected, origin: 'adopted' });
}
