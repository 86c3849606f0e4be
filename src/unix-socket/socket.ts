/**
 * A Unix domain socket of any type, driven on Node's loop: the native Watcher says when the
 * socket is ready, and one native call then moves a whole batch of messages. Everything else is
 * here, in JS: the send queue (bounded, resolved in order, flushed once per tick), the receive
 * queue (read ahead only as far as `receiveQueueLimit`, so a slow reader holds the sender back
 * through the kernel instead of growing memory), descriptors and credentials, and close.
 *
 * Framing is the kernel's: a datagram or seqpacket message arrives exactly as it was sent; on a
 * stream socket a message is whatever one read returned (the bytes are a stream; descriptors
 * arrive with the bytes they were sent with).
 */
import { EventEmitter } from 'node:events';
import { type AccessCheck, decide, reportRefusal } from '../access.js';
import { closedSoon } from '../accept-queue.js';
import { InterprocessError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { type NativeUnixSockets, type NativeWatcher, requireNative } from '../native/addon.js';
import type { LocalSocketName } from '../local-socket/name.js';
import type { PeerCredentials } from '../credentials.js';
import { type SocketFile, releaseSocketFile } from '../unix/socket-file.js';
import { type ReceivedSocketName, addressOf, nameFromAddress, resolveName } from './address.js';
import { descriptorOf } from './descriptor-symbol.js';
import { type HasDescriptor, ReceivedDescriptor, type Sendable, toDescriptor } from './descriptors.js';

/** The three Unix socket types. */
export type UnixSocketType = 'datagram' | 'seqpacket' | 'stream';

/** @internal The native numbers of the types. */
export const TYPE_NUMBER: Readonly<Record<UnixSocketType, number>> = { datagram: 1, seqpacket: 2, stream: 3 };
const TYPE_NAME = ['', 'datagram', 'seqpacket', 'stream'] as const;

/** The sender's process and user, as the kernel saw them when the message was sent (Linux). */
export interface MessageCredentials {
  /** The sending process's id. */
  readonly pid: number;
  /** Its user id. */
  readonly uid: number;
  /** Its group id. */
  readonly gid: number;
}

/** One received message. */
export interface UnixMessage {
  /** The bytes, exactly as sent (datagram, seqpacket); a chunk of the stream (stream). */
  readonly data: Buffer;
  /**
   * The sender's bound name (datagram sockets with bound senders); null otherwise. Sending to it
   * (`{ to: message.from }`) reaches exactly that sender, whatever bytes its name holds.
   */
  readonly from: ReceivedSocketName | null;
  /** Descriptors sent with it, each to be used once (see ReceivedDescriptor). */
  readonly fds: readonly ReceivedDescriptor[];
  /** The sender's credentials, with `passCredentials` (Linux); null otherwise. */
  readonly credentials: MessageCredentials | null;
}

/** Options of a send. */
export interface SendOptions {
  /** Datagram sockets: where to send (otherwise the peer given to connect()). */
  to?: string | LocalSocketName;
  /** Descriptors to send with the message (SCM_RIGHTS), up to 253. They stay open here. */
  fds?: Iterable<Sendable>;
}

/** Options every Unix socket takes. */
export interface UnixSocketOptions {
  /** Most descriptors one received message may carry (default 32, at most 253); more is ERR_INTERPROCESS_CTRUNC. */
  maxFds?: number;
  /** Linux: receive each sender's pid, uid and gid with its messages (SO_PASSCRED). */
  passCredentials?: boolean;
  /** Most messages queued to send before send() rejects with ERR_INTERPROCESS_QUEUE_FULL (default 4096). */
  sendQueueLimit?: number;
  /** Most messages read ahead for receive() and iteration before reading pauses (default 1024). */
  receiveQueueLimit?: number;
}

const EMPTY: readonly ReceivedDescriptor[] = Object.freeze([]);
const FLAG_TRUNCATED = 1;
const FLAG_CTRUNC = 2;
const FLAG_CREDENTIALS = 4;
// The Watcher's ERROR event: the descriptor polled POLLERR (a pending error) and polling stopped.
const POLL_ERROR = 16;
const FLAG_FD_LIMIT = 8; // with FLAG_CTRUNC: the kernel could not install a descriptor (EMFILE)
// Send errors after which nothing more can go on this connection.
const CONNECTION_LOST = new Set(['EPIPE', 'ECONNRESET', 'ENOTCONN', 'EBADF']);
// Send errors that clear by themselves when the receiver catches up, with no readiness to wait for.
const RETRY_LATER = new Set(['ENOBUFS', 'ENOMEM']);
// Receives per readiness event, at most (see #onReady).
const READ_ROUNDS = 8;
// A batch at least this large means the sender is ahead of us: read again at once.
const BUSY_BATCH = 4;

// Received bytes are copied into a slab that messages view, as Node pools small Buffers: no new
// Buffer per batch. A slab is replaced when nearly full; views keep old ones alive while needed.
const POOL_SIZE = 64 * 1024;
const POOL_ROOM = 2048;

// Messages up to this size are copied into one Buffer per batch (send's `packed`): the native side
// then finds them with no N-API call per message, which costs more than such a copy.
const PACK_MAX = 512;

let shared: { native: NativeUnixSockets; meta: Int32Array; fds: Int32Array; progress: Int32Array; pool: Buffer; poolOffset: number; packed: Buffer; spans: Int32Array } | null = null;

/** The addon's socket calls and the buffers every receive reuses (one JS thread: no sharing issue). */
function sockets(feature: string) {
  if (shared === null) {
    const native = requireNative(feature).unixSockets;
    shared = {
      native,
      meta: new Int32Array(native.META_HEADER + native.RECEIVE_BATCH * native.META_STRIDE),
      fds: new Int32Array(native.RECEIVE_BATCH * native.MAX_FDS),
      progress: new Int32Array(1),
      pool: Buffer.allocUnsafeSlow(POOL_SIZE),
      poolOffset: 0,
      packed: Buffer.allocUnsafeSlow(native.SEND_BATCH * PACK_MAX),
      spans: new Int32Array(native.SEND_BATCH * 2),
    };
  }
  return shared;
}

/** @internal The native socket calls (throws ERR_INTERPROCESS_NATIVE without the addon). */
export function unixNative(feature: string): NativeUnixSockets {
  return sockets(feature).native;
}

function passCredentials(native: NativeUnixSockets, fd: number, on: boolean): void {
  try {
    native.setPassCredentials(fd, on);
  } catch (error) {
    const e = fromSystemError(error, 'Cannot pass credentials with messages', 'SCM_CREDENTIALS is Linux only; peerCredentials() tells who is connected on every OS');
    if (e.code === 'EOPNOTSUPP') Object.defineProperty(e, 'code', { value: 'ERR_INTERPROCESS_UNSUPPORTED' });
    throw e;
  }
}

function closedError(doing: string): InterprocessError {
  return new InterprocessError('ERR_SOCKET_CLOSED', `Cannot ${doing}: the socket is closed`);
}

function positiveInteger(value: unknown, argument: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalidArgument(argument, `must be an integer from 0 to ${max}; got ${String(value)}`);
  }
  return value;
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw invalidType('data', 'a Buffer, a TypedArray, an ArrayBuffer or a string', data);
}

interface Settle {
  resolve(): void;
  reject(error: unknown): void;
}

interface Waiter {
  resolve(message: UnixMessage | null): void;
  reject(error: unknown): void;
}

/**
 * A Unix domain socket: datagram, seqpacket or stream. Make one with bindDatagram(),
 * connectUnix(), listenUnix() (accepted connections) or unixSocketPair().
 *
 * Receive with the `'message'` event, `for await (const message of socket)` or `receive()`;
 * reading starts only when one of them asks. Send with `send()`, which resolves once the kernel
 * has the message. Events: `'message'`, `'error'`, `'end'` (the peer finished sending), `'drain'`,
 * `'close'`.
 */
export class UnixSocket extends EventEmitter implements AsyncIterable<UnixMessage>, AsyncDisposable, HasDescriptor {
  /** The socket's type. */
  readonly type: UnixSocketType;
  readonly #typeNumber: number;
  readonly #fd: number;
  readonly #native: NativeUnixSockets;
  readonly #watcher: NativeWatcher;
  #watching = 0;
  #closed = false;
  #file: SocketFile | null = null;
  #localName: LocalSocketName | null | undefined;
  #remoteName: LocalSocketName | null | undefined;
  #connected: boolean;
  #credentials: PeerCredentials | null = null;
  // Datagram receivers with credentials: the `allow` rule each message must pass (see #read).
  #access: AccessCheck | null = null;
  #refused = 0;
  readonly #maxFds: number;
  readonly #sendLimit: number;
  readonly #receiveLimit: number;
  // SO_PASSCRED: on because the user asked (true), off (false), unknown (null: an adopted
  // descriptor), or on only to mark real seqpacket messages ('marking'). See #mark.
  #passCredentials: boolean | null | 'marking';

  // The send queue: parallel arrays read by the native send from #head on.
  #datas: Uint8Array[] = [];
  #addresses: Array<Buffer | null> | null = null;
  #fdLists: Array<Int32Array | null> | null = null;
  #settle: Settle[] = [];
  #head = 0;
  #flushQueued = false;
  #batch = 64;
  #writeWait: 'writable' | 'timer' | null = null;
  #ended = false;
  #drainWaiters: Array<() => void> = [];

  // The receive side.
  #inbox: Array<UnixMessage | Error> = [];
  #inboxHead = 0;
  #waiters: Waiter[] = [];
  #readAhead = false;
  #eof = false;
  // ECONNRESET read before the end: delivered after the messages still queued before it (see #read).
  #reset: InterprocessError | null = null;

  /**
   * @internal Use bindDatagram(), connectUnix(), listenUnix() or unixSocketPair(). Takes `fd`
   * over, unless it throws: then the caller still owns it.
   */
  constructor(fd: number, type: UnixSocketType, options: UnixSocketOptions = {}, connected = false, origin: 'made' | 'accepted' | 'adopted' = 'made') {
    super();
    const { native } = sockets('Unix sockets');
    this.type = type;
    this.#typeNumber = TYPE_NUMBER[type];
    this.#native = native;
    this.#connected = connected;
    this.#maxFds = positiveInteger(options.maxFds, 'options.maxFds', 32, native.MAX_FDS);
    this.#sendLimit = Math.max(1, positiveInteger(options.sendQueueLimit, 'options.sendQueueLimit', 4096));
    this.#receiveLimit = Math.max(1, positiveInteger(options.receiveQueueLimit, 'options.receiveQueueLimit', 1024));
    if (options.passCredentials) passCredentials(native, fd, true);
    this.#passCredentials = options.passCredentials ? true : origin === 'adopted' ? null : false;
    if (type === 'seqpacket' && origin === 'accepted' && !options.passCredentials && process.platform === 'linux') {
      // An accepted socket has the listener's address, so SO_PASSCRED cannot autobind it: leave it
      // on for good, and reads need no toggling to tell empty messages from the end (see #mark).
      try {
        passCredentials(native, fd, true);
        this.#passCredentials = 'marking';
      } catch {
        // Then reads toggle it.
      }
    }
    // From here the watcher owns the descriptor: close, worker teardown and collection close it.
    // Everything that can throw comes before, so a constructor that throws owns nothing.
    this.#watcher = new (requireNative('Unix sockets').Watcher)(fd, (status, events) => this.#onReady(status, events), true);
    this.#fd = fd;
    this.on('newListener', (event) => {
      if (event === 'message') queueMicrotask(() => this.#toListeners());
    });
    this.on('removeListener', (event) => {
      if (event === 'message') this.#updateWatcher();
    });
  }

  /** @internal The descriptor, for sending this socket to another process. */
  [descriptorOf](): number {
    if (this.#closed) throw closedError('send a closed socket');
    return this.#fd;
  }

  /** @internal */
  adoptFile(file: SocketFile | null, name: LocalSocketName | null): void {
    this.#file = file;
    this.#localName = name;
  }

  /** @internal Datagram receivers: drop messages whose credentials `check` refuses. */
  setAccess(check: AccessCheck): void {
    this.#access = check;
  }

  /**
   * Datagram sockets bound with `passCredentials` and an `allow` rule: how many messages were
   * dropped because their sender's credentials were refused (each reported with a `'refused'`
   * event). 0 on other sockets.
   */
  get refused(): number {
    return this.#refused;
  }

  /** @internal */
  setRemoteName(name: LocalSocketName | null): void {
    this.#remoteName = name;
    this.#connected = true;
  }

  /**
   * The descriptor (for spawn's stdio, or other native APIs). The socket owns it: do not close it,
   * and expect it to be closed by close() (or when the socket is collected while idle).
   */
  get fd(): number {
    if (this.#closed) throw closedError('read the descriptor');
    return this.#fd;
  }

  /** True until close(). */
  get open(): boolean {
    return !this.#closed;
  }

  /** The name this socket is bound to (null when unbound or unnamed). */
  get localName(): LocalSocketName | null {
    if (this.#localName === undefined) this.#localName = this.#closed ? null : nameFromAddress(this.#native.address(this.#fd, false));
    return this.#localName;
  }

  /** The name of the connected peer (null when unconnected or when the peer is unnamed). */
  get remoteName(): LocalSocketName | null {
    if (this.#remoteName === undefined) {
      try {
        this.#remoteName = this.#closed ? null : nameFromAddress(this.#native.address(this.#fd, true));
      } catch {
        this.#remoteName = null; // ENOTCONN: no peer
      }
    }
    return this.#remoteName;
  }

  /** Messages waiting to be sent. */
  get sendQueueLength(): number {
    return this.#datas.length - this.#head;
  }

  /**
   * Datagram sockets: sets the default peer for send() without `to`, and receives only from it.
   * Fails with ENOENT or ECONNREFUSED when nothing is bound there.
   */
  connect(name: string | LocalSocketName): this {
    if (this.#closed) throw closedError('connect');
    if (this.type !== 'datagram') throw invalidArgument('this', `is a ${this.type} socket: use connectUnix() to connect one`);
    const resolved = resolveName(name);
    try {
      this.#native.connect(this.#fd, addressOf(resolved));
    } catch (error) {
      throw fromSystemError(error, `Cannot connect the datagram socket to ${resolved}`, 'Nothing is bound there: bind the receiver first.', { address: resolved.address });
    }
    this.#remoteName = resolved;
    this.#connected = true;
    this.#credentials = null;
    return this;
  }

  /** Linux: receive each sender's credentials with its messages (SO_PASSCRED), or stop. */
  setPassCredentials(on: boolean): this {
    if (this.#closed) throw closedError('set passCredentials');
    passCredentials(this.#native, this.#fd, on);
    this.#passCredentials = on;
    return this;
  }

  /**
   * The pid, uid and gid of the connected peer, as the kernel recorded them when the connection
   * (or the socket pair) was made. Remembered, so it still answers after close.
   */
  peerCredentials(): PeerCredentials {
    if (this.#credentials) return this.#credentials;
    if (this.#closed) throw closedError('read peer credentials');
    let raw: { pid: number; uid: number; gid: number };
    try {
      raw = requireNative('Reading peer credentials').peerCredentials(this.#fd);
    } catch (error) {
      throw fromSystemError(error, 'Cannot read peer credentials');
    }
    if (raw.pid <= 0 && (raw.uid === -1 || raw.uid === 0xffffffff)) {
      throw new InterprocessError(
        'ERR_INTERPROCESS_NO_CREDENTIALS',
        this.type === 'datagram'
          ? 'The kernel records no peer credentials for a datagram socket connected with connect() (only for socket pairs): receive them with each message instead, with { passCredentials: true }'
          : 'The kernel recorded no peer credentials: this socket is not connected',
      );
    }
    this.#credentials = Object.freeze({ pid: raw.pid > 0 ? raw.pid : null, uid: raw.uid, gid: raw.gid });
    return this.#credentials;
  }

  // ---- sending ----

  /**
   * Sends one message: a datagram or seqpacket message exactly, or bytes on a stream, with
   * descriptors if given. Resolves once the kernel has it; messages go in the order of the calls.
   * When the kernel's buffer is full it waits (backpressure); more than `sendQueueLimit` queued
   * messages reject at once with ERR_INTERPROCESS_QUEUE_FULL: await drain() before sending more.
   */
  send(data: Uint8Array | ArrayBufferView | ArrayBuffer | string, options?: SendOptions): Promise<void> {
    try {
      return this.#enqueue(toBytes(data), options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #enqueue(bytes: Uint8Array, options: SendOptions | undefined): Promise<void> {
    if (this.#closed) throw closedError('send');
    if (this.#ended) throw new InterprocessError('EPIPE', 'Cannot send: end() was called on this socket');
    let address: Buffer | null = null;
    let fds: Int32Array | null = null;
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
      if (options.to !== undefined) {
        if (this.type !== 'datagram') throw invalidArgument('options.to', `applies to datagram sockets only; this is a ${this.type} socket`);
        address = addressOf(resolveName(options.to));
      }
      if (options.fds !== undefined) {
        if (options.fds === null || typeof (options.fds as Iterable<unknown>)[Symbol.iterator] !== 'function') throw invalidType('options.fds', 'an array of descriptors', options.fds);
        const list = Array.from(options.fds, (value, i) => toDescriptor(value, `options.fds[${i}]`));
        if (list.length > this.#native.MAX_FDS) throw invalidArgument('options.fds', `holds ${list.length} descriptors; one message carries at most ${this.#native.MAX_FDS} (SCM_MAX_FD)`);
        if (list.length > 0) fds = Int32Array.from(list);
      }
    }
    if (address === null && this.type === 'datagram' && !this.#connected) {
      throw invalidArgument('options.to', 'is required: this datagram socket has no default peer (connect() it, or pass { to })');
    }
    if (bytes.length === 0 && this.type === 'stream') {
      if (fds !== null) throw invalidArgument('data', 'must hold at least one byte when descriptors go with it on a stream socket (they travel with the bytes)');
      return Promise.resolve();
    }
    if (this.sendQueueLength >= this.#sendLimit) {
      throw new InterprocessError('ERR_INTERPROCESS_QUEUE_FULL', `The send queue is full (${this.#sendLimit} messages waiting for the receiver): await socket.drain() before sending more, or raise sendQueueLimit`);
    }
    const index = this.#datas.length;
    this.#datas.push(bytes);
    if (address !== null || this.#addresses !== null) {
      this.#addresses ??= new Array<Buffer | null>(index).fill(null);
      this.#addresses.push(address);
    }
    if (fds !== null || this.#fdLists !== null) {
      this.#fdLists ??= new Array<Int32Array | null>(index).fill(null);
      this.#fdLists.push(fds);
    }
    const promise = new Promise<void>((resolve, reject) => this.#settle.push({ resolve, reject }));
    if (!this.#flushQueued && this.#writeWait === null) {
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.#flush();
      });
    }
    return promise;
  }

  #flush(): void {
    const native = this.#native;
    const { progress, packed, spans } = sockets('Unix sockets');
    while (!this.#closed && this.#head < this.#datas.length) {
      const count = Math.min(this.#batch, this.#datas.length - this.#head);
      // Small messages go by copy into `packed` (see PACK_MAX); the others straight from their memory.
      let offset = 0;
      for (let i = 0, k = this.#head; i < count; i++, k++) {
        const data = this.#datas[k]!;
        if (data.length <= PACK_MAX) {
          packed.set(data, offset);
          spans[2 * i] = offset;
          spans[2 * i + 1] = data.length;
          offset += data.length;
        } else {
          spans[2 * i] = -1;
        }
      }
      let sent: number;
      try {
        sent = native.send(this.#fd, this.#typeNumber, this.#datas, this.#head, count, this.#addresses, this.#fdLists, progress, packed, spans);
      } catch (error) {
        if (RETRY_LATER.has((error as NodeJS.ErrnoException).code ?? '')) {
          this.#waitToWrite('timer'); // the kernel is short of buffers: try again shortly
          return;
        }
        this.#sendFailed(error);
        continue;
      }
      for (let i = 0; i < sent; i++) this.#settleHead(null);
      // Offer the kernel about what it took last time: building headers it refuses costs time.
      this.#batch = sent === count ? Math.min(this.#batch * 2, native.SEND_BATCH) : Math.max(8, sent * 2);
      if (progress[0]! > 0) {
        // A stream took part of the message: the rest goes next, its descriptors already went.
        this.#datas[this.#head] = this.#datas[this.#head]!.subarray(progress[0]);
        if (this.#fdLists) this.#fdLists[this.#head] = null;
      }
      if (sent < count) {
        if (this.#head < this.#datas.length) {
          // Linux: an unconnected datagram socket polls writable even when the receiver is full.
          const viaTimer = this.type === 'datagram' && this.#addresses?.[this.#head] != null;
          this.#waitToWrite(viaTimer ? 'timer' : 'writable');
          return;
        }
      }
    }
    this.#queueEmpty();
  }

  /** The head message failed: reject it (and, if the connection is gone, everything queued). */
  #sendFailed(error: unknown): void {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const to = this.#addresses?.[this.#head];
    const name = to ? nameFromAddress(to) : this.#remoteName;
    const where = name ? ` to ${name}` : '';
    const hint =
      code === 'ENOENT' || code === 'ECONNREFUSED'
        ? 'Nothing is bound there: start the receiver first.'
        : code === 'EMSGSIZE'
          ? `The message (${this.#datas[this.#head]!.length} bytes) is larger than the socket's send buffer allows (SO_SNDBUF; about 208 KiB by default on Linux).`
          : code === 'EBADF'
            ? 'A descriptor in options.fds is not open.'
            : undefined;
    const failure = fromSystemError(error, `Cannot send a ${this.type} message${where}`, hint, name ? { address: name.address } : {});
    if (CONNECTION_LOST.has(code) && !(code === 'EBADF' && this.#fdLists?.[this.#head])) {
      while (this.#head < this.#datas.length) this.#settleHead(failure);
    } else {
      this.#settleHead(failure);
    }
  }

  #settleHead(error: InterprocessError | null): void {
    const i = this.#head++;
    const settle = this.#settle[i]!;
    this.#datas[i] = undefined as unknown as Uint8Array;
    if (this.#addresses) this.#addresses[i] = null;
    if (this.#fdLists) this.#fdLists[i] = null;
    this.#settle[i] = undefined as unknown as Settle;
    if (error === null) settle.resolve();
    else settle.reject(error);
  }

  #waitToWrite(how: 'writable' | 'timer'): void {
    this.#writeWait = how;
    if (how === 'timer') {
      setTimeout(() => {
        this.#writeWait = null;
        this.#flush();
      }, 1);
    }
    this.#compact();
    this.#updateWatcher();
  }

  #compact(): void {
    if (this.#head === this.#datas.length) {
      this.#datas = [];
      this.#settle = [];
      this.#addresses = null;
      this.#fdLists = null;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#datas.length) {
      this.#datas.splice(0, this.#head);
      this.#settle.splice(0, this.#head);
      this.#addresses?.splice(0, this.#head);
      this.#fdLists?.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#drainWaiters.length > 0 && this.sendQueueLength * 2 <= this.#sendLimit) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
      this.emit('drain');
    }
  }

  #queueEmpty(): void {
    this.#writeWait = null;
    this.#compact();
    this.#updateWatcher();
  }

  /** Resolves once the send queue is at most half full again (at once if it is). */
  drain(): Promise<void> {
    if (this.#closed || this.sendQueueLength * 2 <= this.#sendLimit) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /**
   * Stream and seqpacket sockets: sends what is queued, then tells the peer nothing more will come
   * (it reads the end). Receiving goes on until close().
   */
  async end(): Promise<void> {
    if (this.type === 'datagram') throw invalidArgument('this', 'is a datagram socket: it has no end; close() it');
    if (this.#closed || this.#ended) return;
    this.#ended = true;
    const last = this.#settle[this.#settle.length - 1];
    if (last && this.sendQueueLength > 0) {
      await new Promise<void>((resolve) => {
        const { resolve: done, reject } = last;
        last.resolve = () => (done(), resolve());
        last.reject = (e) => (reject(e), resolve());
      });
    }
    if (this.#closed) return;
    try {
      this.#native.shutdown(this.#fd);
    } catch (error) {
      throw fromSystemError(error, 'Cannot end the socket');
    }
  }

  // ---- receiving ----

  #onReady(status: number, events: number): void {
    if (this.#closed) return;
    // An error stops polling (the Watcher's ERROR: a pending socket error, or a status < 0).
    const stopped = status < 0 || (events & POLL_ERROR) !== 0;
    if (stopped) this.#watching = 0;
    if (status < 0) {
      // The descriptor itself cannot be polled any more (closed under us): nothing more can come or go.
      const failure = new InterprocessError('ERR_INTERPROCESS_POLL', `Waiting on the ${this.type} socket failed (libuv error ${status}): its descriptor was closed by something other than this socket. Close the socket; do not close socket.fd yourself.`);
      while (this.#head < this.#datas.length) this.#settleHead(failure);
      this.#compact();
      this.#reset ??= failure;
      this.#onEnd();
      return;
    }
    if (events & 2 /* WRITABLE */ && this.#writeWait === 'writable') {
      this.#writeWait = null;
      this.#flush();
    }
    // Under load, receive again after delivering: a sender on another CPU has usually refilled the
    // queue while JS ran (Linux keeps only 10 datagrams queued for an unconnected receiver), and a
    // read that finds more saves a trip through the event loop. A small batch means no load (a
    // ping-pong, say): then another read would only find nothing. Bounded, so other work gets its turn.
    if (events & 1 /* READABLE */) {
      for (let round = 0; round < READ_ROUNDS && this.#wantsToRead(); round++) {
        if (this.#read() < BUSY_BATCH) break;
      }
    }
    if (stopped) this.#updateWatcher();
  }

  /**
   * The native receive's `mark` (Linux seqpacket): after the peer closes, the end reads as 0 bytes,
   * like an empty message. With SO_PASSCRED on, every real message carries a credentials cmsg and
   * the end none, so the read turns it on for its duration unless it is on already (0: it is, the
   * user's; 1: it is off; 2: unknown, ask the kernel; 3: on, only for this). Credentials are
   * reported only if the user asked. It stays off between reads on sockets without an address,
   * which SO_PASSCRED would autobind when they send.
   */
  #mark(): number {
    if (this.type !== 'seqpacket') return 0;
    const state = this.#passCredentials;
    return state === true ? 0 : state === false ? 1 : state === null ? 2 : 3;
  }

  #wantsToRead(): boolean {
    if (this.#closed || this.#eof) return false;
    if (this.listenerCount('message') > 0 || this.#waiters.length > 0) return true;
    return this.#readAhead && this.#inbox.length - this.#inboxHead < this.#receiveLimit;
  }

  #updateWatcher(): void {
    if (this.#closed) return;
    const mask = (this.#wantsToRead() ? 1 : 0) | (this.#writeWait === 'writable' ? 2 : 0);
    if (mask === this.#watching) return;
    this.#watching = mask;
    if (mask === 0) this.#watcher.stop();
    else this.#watcher.start(mask);
  }

  /** Receives one batch and delivers it; returns how many messages (0: none, or the end, or a failure). */
  #read(): number {
    const state = sockets('Unix sockets');
    const { native, meta, fds, pool } = state;
    let buffer: Buffer | undefined;
    try {
      buffer = native.receive(this.#fd, this.#typeNumber, meta, fds, this.#maxFds, pool, state.poolOffset, this.#mark());
    } catch (error) {
      const reset = (error as NodeJS.ErrnoException).code === 'ECONNRESET';
      const failure = fromSystemError(error, `Cannot receive on the ${this.type} socket`, reset ? 'The peer closed the connection with data of ours unread; what it sent before is delivered first.' : undefined);
      if (this.type === 'datagram') {
        this.#deliver(failure); // a datagram socket goes on
        return 0;
      }
      if (reset && this.#reset === null) {
        // The peer closed with our data unread. The kernel says so first (seqpacket) or after the
        // bytes (stream), then gives what the peer sent before it, then the end: read those, and
        // report the reset at the end. Nothing queued to send can reach the peer any more.
        this.#reset = failure;
        while (this.#head < this.#datas.length) this.#settleHead(failure);
        this.#compact();
        return this.#read();
      }
      this.#reset ??= failure; // the connection is gone
      this.#onEnd();
      return 0;
    }
    if (buffer === undefined) return 0;
    const count = meta[0]!;
    const eof = meta[1] === 1;
    const header = native.META_HEADER;
    const stride = native.META_STRIDE;
    let offset = buffer === pool ? state.poolOffset : 0;
    let fdIndex = 0;
    for (let i = 0; i < count; i++) {
      const m = header + i * stride;
      if (this.#closed) {
        // Closed by a listener of this batch: the rest is not delivered, and its descriptors close now.
        let end = fdIndex;
        for (let k = i; k < count; k++) end += meta[header + k * stride + 3]!;
        for (let k = fdIndex; k < end; k++) new ReceivedDescriptor(fds[k]!).close();
        break;
      }
      const length = meta[m]!;
      const real = meta[m + 1]!;
      const addressLength = meta[m + 2]!;
      const fdCount = meta[m + 3]!;
      const flags = meta[m + 4]!;
      const data = buffer.subarray(offset, offset + length);
      offset += length;
      const from = addressLength > 0 && !this.#connected ? nameFromAddress(buffer.subarray(offset, offset + addressLength)) : null;
      offset += addressLength;
      let received = EMPTY;
      if (fdCount > 0) {
        const list: ReceivedDescriptor[] = [];
        for (let k = 0; k < fdCount; k++) list.push(new ReceivedDescriptor(fds[fdIndex++]!));
        received = list;
      }
      const credentials = flags & FLAG_CREDENTIALS ? Object.freeze({ pid: meta[m + 5]!, uid: meta[m + 6]! >>> 0, gid: meta[m + 7]! >>> 0 }) : null;
      if (this.#access !== null && this.#refuse(credentials)) {
        for (const d of received) d.close();
      } else if (flags & (FLAG_TRUNCATED | FLAG_CTRUNC)) {
        for (const d of received) d.close();
        const error =
          flags & FLAG_TRUNCATED
            ? new InterprocessError('EMSGSIZE', `A ${real}-byte message arrived truncated to ${length} bytes: behind others in one batch, interprocess receives messages of up to 256 KiB whole (only the first in line may be larger). The rest of it is lost; have the sender keep messages under 256 KiB.`, { syscall: 'recvmsg' })
            : flags & FLAG_FD_LIMIT
            ? new InterprocessError('EMFILE', 'A message arrived with descriptors this process could not take: it has as many open as its limit allows (RLIMIT_NOFILE, ulimit -n). The kernel dropped them (MSG_CTRUNC) and those that did arrive were closed. Close descriptors you no longer need, or raise the limit.', { syscall: 'recvmsg' })
            : new InterprocessError('ERR_INTERPROCESS_CTRUNC', `A message arrived with more descriptors than this socket accepts (maxFds: ${this.#maxFds}); the kernel cut them (MSG_CTRUNC) and those that did arrive were closed. Raise maxFds (up to 253).`, { syscall: 'recvmsg' });
        Object.assign(error, { data, from, credentials });
        this.#deliver(error);
      } else {
        this.#deliver({ data, from, fds: received, credentials });
      }
    }
    if (buffer === pool) {
      state.poolOffset = (offset + 7) & ~7; // the next batch starts aligned
      if (state.poolOffset > POOL_SIZE - POOL_ROOM) {
        state.pool = Buffer.allocUnsafeSlow(POOL_SIZE);
        state.poolOffset = 0;
      }
    }
    if (eof) this.#onEnd();
    else this.#updateWatcher();
    return eof || this.#closed ? 0 : count;
  }

  /** The `allow` rule on one message's credentials (none: refused, as the sender is unknown). */
  #refuse(credentials: MessageCredentials | null): boolean {
    const refusal = decide(this.#access!, () => {
      if (credentials === null) throw new InterprocessError('ERR_INTERPROCESS_NO_CREDENTIALS', 'The message came without credentials (passCredentials is off)');
      return credentials;
    });
    if (refusal === null) return false;
    this.#refused++;
    reportRefusal(this, refusal);
    return true;
  }

  #deliver(item: UnixMessage | Error): void {
    if (item instanceof Error) {
      // Errors come from what a peer did (a reset, a message too large, too many descriptors):
      // never thrown at the event loop. With no 'error' listener and no receive() waiting, a
      // 'message' listener's socket gets a process warning; otherwise receive() gets it in turn.
      if (this.listenerCount('error') > 0) this.emit('error', item);
      else if (this.#waiters.length > 0) this.#waiters.shift()!.reject(item);
      else if (this.listenerCount('message') > 0) process.emitWarning(item);
      else this.#inbox.push(item);
      return;
    }
    // emit() says whether there was a listener: no second lookup per message.
    if (this.emit('message', item)) return;
    if (this.#waiters.length > 0) this.#waiters.shift()!.resolve(item);
    else this.#inbox.push(item);
  }

  /** A 'message' listener was added: what receive() read ahead goes to it first, then reading goes on. */
  #toListeners(): void {
    while (this.listenerCount('message') > 0 && this.#inboxHead < this.#inbox.length) {
      const item = this.#inbox[this.#inboxHead++]!;
      if (item instanceof Error) {
        if (this.listenerCount('error') > 0) this.emit('error', item);
        else process.emitWarning(item);
      } else {
        this.emit('message', item);
      }
    }
    if (this.#inboxHead === this.#inbox.length) {
      this.#inbox = [];
      this.#inboxHead = 0;
    }
    this.#updateWatcher();
  }

  #onEnd(): void {
    if (this.#closed) return;
    this.#eof = true;
    if (this.#reset !== null) {
      const reset = this.#reset;
      this.#reset = null;
      this.#deliver(reset);
      if (this.#closed) return; // by an 'error' listener
    }
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(null);
    this.#updateWatcher();
    this.emit('end');
  }

  /**
   * The next message; null once the peer has finished sending (stream, seqpacket) or the socket
   * is closed. Rejects with a receive error (a truncated message, cut descriptors, a reset
   * connection) in the order it happened; the socket stays usable after it.
   */
  receive(): Promise<UnixMessage | null> {
    this.#readAhead = true;
    if (this.#inboxHead < this.#inbox.length) {
      const item = this.#inbox[this.#inboxHead++]!;
      if (this.#inboxHead === this.#inbox.length) {
        this.#inbox = [];
        this.#inboxHead = 0;
      } else if (this.#inboxHead > 1024 && this.#inboxHead * 2 > this.#inbox.length) {
        this.#inbox.splice(0, this.#inboxHead);
        this.#inboxHead = 0;
      }
      this.#updateWatcher();
      return item instanceof Error ? Promise.reject(item) : Promise.resolve(item);
    }
    if (this.#closed || this.#eof) return Promise.resolve(null);
    const promise = new Promise<UnixMessage | null>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#updateWatcher();
    return promise;
  }

  /** Messages until the end or close. Leaving the loop early does not close the socket. */
  async *[Symbol.asyncIterator](): AsyncIterator<UnixMessage> {
    for (;;) {
      const message = await this.receive();
      if (message === null) return;
      yield message;
    }
  }

  // ---- lifetime ----

  /**
   * Closes the socket at once: queued sends reject with ERR_SOCKET_CLOSED, receive() and
   * iteration end, a socket file of ours is removed, descriptors read ahead but never taken are
   * closed. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#watcher.close(); // stops polling, then closes the descriptor
    const failure = closedError('send this message');
    while (this.#head < this.#datas.length) this.#settleHead(failure);
    this.#compact();
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(null);
    for (const item of this.#inbox.splice(this.#inboxHead)) if (!(item instanceof Error)) for (const d of item.fds) d.close();
    this.#inbox = [];
    this.#inboxHead = 0;
    if (this.#file) releaseSocketFile(this.#file);
    return closedSoon(this);
  }

  /** Lets the process exit while this socket waits (as net.Socket's unref). */
  unref(): this {
    if (!this.#closed) this.#watcher.ref(false);
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    if (!this.#closed) this.#watcher.ref(true);
    return this;
  }

  /** `await using socket = ...` closes it at the end of the scope. */
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
  return new UnixSocket(fd, type, options, connected, 'adopted');
}
