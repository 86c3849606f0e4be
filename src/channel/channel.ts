/**
 * A message channel over any byte stream of ours: a local socket, a pipe pair, a FIFO pair, a
 * Unix stream socket (which can also carry descriptors with messages), or any Node Duplex. Whole
 * messages in, whole messages out; on the wire only length-prefixed frames (see docs/channel.md),
 * so a peer in any language can speak it.
 *
 * Safety: a frame over the limit, a payload the codec cannot read, a peer that vanishes mid-frame
 * or a stream error ends this channel with a clear error, and only this channel: never a crash
 * (the error is emitted only to 'error' listeners; otherwise it surfaces from send(), iteration,
 * and the 'close' event).
 * Backpressure: send() waits while the stream is full, so a slow peer makes senders wait. Flow
 * control: the channel stops reading from its peer (the stream is paused; nothing is dropped, no
 * error) while too many received messages wait for a consumer (highWaterMark), while the replies
 * it owes the peer and has not written yet pass sendHighWaterMark bytes, or while RpcChannel
 * answers too many of the peer's requests at once (maxPendingRequests); it reads on when they are
 * all back under half. So what a peer makes us hold is bounded (see docs/reliability.md).
 * Orderly close: close() sends everything sent before it, then ends our side; what the peer sent
 * before its end still arrives.
 *
 * Sending: everything sent in one tick is framed into one batch (small frames into one shared
 * buffer, text straight from the string) and written at once, and every send of that batch gets
 * the same promise. A message with descriptors is a batch of its own: one sendmsg carries its
 * whole frame and, as ancillary data, its descriptors.
 */
import { EventEmitter } from 'node:events';
import type { Duplex, Readable, Writable } from 'node:stream';
import { acceptedRule, checkCodecTrust } from '../access.js';
import { InterprocessError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { type ReceivedDescriptor, type Sendable, closeUnclaimed, toDescriptor } from '../unix-socket/descriptors.js';
import { UnixSocket, type UnixMessage } from '../unix-socket/socket.js';
import { type Codec, type CodecName, decodeSpan, encodeBody, jsonCodec, toCodec, v8Codec } from './codec.js';
import { DEFAULT_MAX_FRAME, type Envelope, FrameReader, FrameWriter, HEADER_BYTES, MAX_FRAME_LIMIT, readText, skewOf } from './frame.js';

/** Options of a {@link Channel}. */
export interface ChannelOptions<T> {
  /** How messages become bytes: 'json' (default), 'raw' (Buffers), 'v8' (structured clone), or your own. */
  codec?: CodecName | Codec<T>;
  /** Largest frame payload accepted or sent, in bytes (default 16 MiB, at most 2 GiB - 1). */
  maxFrameSize?: number;
  /** Received messages held for a consumer before the channel stops reading (default 64). */
  highWaterMark?: number;
  /**
   * Bytes of replies (RpcChannel's answers to the peer's requests) queued and not yet written, past
   * which the channel stops reading from the peer until they are under half (default 1 MiB). A peer
   * that sends requests and never reads the replies is held to this. What you send yourself is not
   * counted: await send() to pace it.
   */
  sendHighWaterMark?: number;
  /**
   * Use the v8 codec on a connection accepted under an `allow` rule that lets in other users
   * (default false: refused with ERR_INTERPROCESS_UNTRUSTED_CODEC, as `v8.deserialize` trusts
   * its input). See docs/security.md.
   */
  trustPeers?: boolean;
}

/** Separate streams for each direction, e.g. the ends of two pipes or two FIFOs. */
export interface StreamPair {
  /** Where the peer's messages come from. */
  readable: Readable;
  /** Where our messages go. */
  writable: Writable;
}

/** Options of {@link Channel.send}. */
export interface ChannelSendOptions {
  /**
   * Descriptors to send with the message (SCM_RIGHTS), up to 253: numbers, net.Socket,
   * net.Server, FileHandle, pipe ends, our sockets, received descriptors. Only a channel on a Unix
   * stream socket of interprocess carries them (ERR_INTERPROCESS_NO_DESCRIPTORS otherwise). They
   * stay open here: the peer gets duplicates.
   */
  fds?: Iterable<Sendable>;
}

/** A received message with the descriptors that came with it (see {@link Channel.withFds}). */
export interface ChannelMessage<T> {
  /** The message. */
  message: T;
  /** The descriptors sent with it (empty when none): take or convert them before the next message. */
  fds: readonly ReceivedDescriptor[];
}

const NO_FDS: readonly ReceivedDescriptor[] = Object.freeze([]);
const EMPTY = Buffer.alloc(0);

/**
 * Whether a json payload begins and ends like one object, array or string (no whitespace around
 * it, as JSON.stringify writes it): only such frames are parsed together (see Channel#parseRun).
 */
function looksWhole(buffer: Buffer, start: number, end: number): boolean {
  if (end - start < 2) return false;
  const first = buffer[start];
  const last = buffer[end - 1];
  return (first === 0x7b && last === 0x7d) || (first === 0x5b && last === 0x5d) || (first === 0x22 && last === 0x22);
}

/**
 * How a batch ends, and a promise of it made only when a send() asks for one: requests and
 * replies of RpcChannel (queueFrame) need none, and a failure nobody asked about is the channel's,
 * reported there, never an unhandled rejection.
 */
class Outcome {
  #promise: Promise<void> | null = null;
  #resolve: (() => void) | null = null;
  #reject: ((error: unknown) => void) | null = null;
  /** 0 pending, 1 done, 2 failed. */
  #state = 0;
  #error: unknown = undefined;

  get promise(): Promise<void> {
    if (this.#promise === null) {
      if (this.#state === 1) this.#promise = Promise.resolve();
      else if (this.#state === 2) this.#promise = Promise.reject(this.#error);
      else {
        this.#promise = new Promise<void>((resolve, reject) => {
          this.#resolve = resolve;
          this.#reject = reject;
        });
      }
    }
    return this.#promise;
  }

  resolve(): void {
    if (this.#state !== 0) return;
    this.#state = 1;
    this.#resolve?.();
  }

  reject(error: unknown): void {
    if (this.#state !== 0) return;
    this.#state = 2;
    this.#error = error;
    this.#reject?.(error);
  }
}

/** A batch of whole frames, written with one call (a frame with descriptors is alone in its batch). */
interface Batch {
  chunks: Uint8Array[];
  fds: Int32Array | null;
  settle: Outcome;
  /** Bytes of replies in it (see ChannelOptions.sendHighWaterMark). */
  replyBytes: number;
}

interface Waiter {
  resolve(result: ChannelMessage<unknown> | null): void;
  reject(error: unknown): void;
}

function closedError(): InterprocessError {
  return new InterprocessError('ERR_INTERPROCESS_CLOSED', 'The channel is closed');
}

// Descriptor lists a 'message' listener keeps past its return (RpcChannel, for async handlers).
const kept = new WeakSet<readonly ReceivedDescriptor[]>();

/** @internal A 'message' listener keeps `fds` open after it returns; it must release() them later. */
export function keepFds(fds: readonly ReceivedDescriptor[]): void {
  if (fds.length > 0) kept.add(fds);
}

/** @internal Closes the descriptors of a message that nobody took. */
export function release(fds: readonly ReceivedDescriptor[]): void {
  for (const d of fds) d[closeUnclaimed]();
}

/** What the channel needs of its byte stream, both ways. */
interface Transport {
  /** Whether descriptors can go with the bytes. */
  readonly passesFds: boolean;
  /** Writes whole frames; with `fds`, the chunks are exactly one frame. `done` once the OS has them. */
  write(chunks: Uint8Array[], fds: Int32Array | null, done: (error?: unknown) => void): void;
  /** The stream is full: wait for onDrain before writing more. */
  readonly full: boolean;
  /** Ends our side, after everything written. */
  end(done: () => void): void;
  /** Stops reading (what was read ahead may still come from a UnixSocket's inbox: see UnixTransport). */
  pause(): void;
  resume(): void;
  /** The reading side is gone (destroyed, closed). */
  readonly gone: boolean;
  destroy(): void;
}

interface TransportEvents {
  data(chunk: Buffer, fds: ReceivedDescriptor[] | null): void;
  end(): void;
  error(error: unknown): void;
  gone(): void;
  drain(): void;
}

/** Node streams: a Duplex, or a readable and a writable. */
class StreamTransport implements Transport {
  readonly passesFds = false;
  readonly #readable: Readable;
  readonly #writable: Writable;
  readonly #duplex: boolean;

  constructor(readable: Readable, writable: Writable, events: TransportEvents) {
    this.#readable = readable;
    this.#writable = writable;
    this.#duplex = (readable as unknown) === writable;
    // The channel decides when to end our side (after its own queue), not the stream.
    if (this.#duplex) (readable as Duplex).allowHalfOpen = true;
    readable.on('data', (chunk: Buffer) => events.data(chunk, null));
    readable.on('end', () => events.end());
    readable.on('error', (error) => events.error(error));
    if (!this.#duplex) writable.on('error', (error) => events.error(error));
    readable.on('close', () => events.gone());
    writable.on('drain', () => events.drain());
  }

  write(chunks: Uint8Array[], _fds: Int32Array | null, done: (error?: unknown) => void): void {
    const writable = this.#writable;
    const last = chunks.length - 1;
    if (last === 0) {
      writable.write(chunks[0], done);
      return;
    }
    writable.cork(); // one writev
    for (let i = 0; i < last; i++) writable.write(chunks[i]);
    writable.write(chunks[last], done);
    writable.uncork();
  }

  get full(): boolean {
    return this.#writable.writableNeedDrain;
  }

  end(done: () => void): void {
    this.#writable.end(done);
  }

  pause(): void {
    this.#readable.pause();
  }

  resume(): void {
    this.#readable.resume();
  }

  get gone(): boolean {
    return this.#readable.destroyed;
  }

  destroy(): void {
    this.#readable.destroy();
    if (!this.#duplex) this.#writable.destroy();
  }
}

// Bytes handed to a Unix socket and not yet taken by its kernel, beyond which the channel waits.
const UNIX_HIGH_WATER = 64 * 1024;

/** A Unix stream socket of ours: bytes and, as ancillary data, descriptors. */
class UnixTransport implements Transport {
  readonly passesFds = true;
  readonly #socket: UnixSocket;
  readonly #events: TransportEvents;
  readonly #onMessage: (message: UnixMessage) => void;
  #paused = false;
  /** The socket ended while paused: messages it read ahead wait in its inbox, and the end comes after them. */
  #endWaits = false;
  #queued = 0;
  #full = false;

  constructor(socket: UnixSocket, events: TransportEvents) {
    this.#socket = socket;
    this.#events = events;
    this.#onMessage = (message) => events.data(message.data, message.fds.length > 0 ? (message.fds as ReceivedDescriptor[]) : null);
    socket.on('message', this.#onMessage);
    socket.on('end', () => {
      if (this.#paused) this.#endWaits = true;
      else events.end();
    });
    socket.on('error', (error) => events.error(error));
    socket.on('close', () => events.gone());
  }

  write(chunks: Uint8Array[], fds: Int32Array | null, done: (error?: unknown) => void): void {
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.byteLength;
    this.#queued += bytes;
    if (this.#queued >= UNIX_HIGH_WATER) this.#full = true;
    let failed = false;
    const fail = (error: unknown) => {
      if (!failed) {
        failed = true;
        done(error);
      }
    };
    let last: Promise<void>;
    if (fds !== null) {
      // The whole frame in one sendmsg, so the descriptors (attached to its first bytes) arrive
      // with bytes of this frame and of no other.
      const frame = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      last = this.#socket.send(frame, { fds });
    } else {
      for (let i = 0; i < chunks.length - 1; i++) this.#socket.send(chunks[i]!).catch(fail);
      last = this.#socket.send(chunks[chunks.length - 1]!);
    }
    last.then(
      () => {
        this.#queued -= bytes;
        if (!failed) done();
        if (this.#full && this.#queued < UNIX_HIGH_WATER / 2) {
          this.#full = false;
          this.#events.drain();
        }
      },
      (error) => {
        this.#queued -= bytes;
        fail(error);
      },
    );
  }

  get full(): boolean {
    return this.#full;
  }

  end(done: () => void): void {
    this.#socket.end().then(done, done);
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#socket.off('message', this.#onMessage);
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // Adding the listener hands it what the socket read ahead, in a microtask queued now; the
    // end, if it came meanwhile, follows them (unless they paused us again).
    this.#socket.on('message', this.#onMessage);
    if (this.#endWaits) {
      queueMicrotask(() => {
        if (this.#paused || !this.#endWaits) return;
        this.#endWaits = false;
        this.#events.end();
      });
    }
  }

  get gone(): boolean {
    return this.#socket.closed;
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

// A batch leaves as soon as it holds this much, without waiting for the end of the tick.
const BATCH_BYTES = 64 * 1024;
/** Default sendHighWaterMark: 1 MiB of unwritten replies. */
const DEFAULT_SEND_HIGH_WATER = 1024 * 1024;

/** @internal Channel's method for RpcChannel: sends one frame with an envelope before its body. */
export const sendFrame: unique symbol = Symbol('interprocess.sendFrame');
/** @internal The same without a promise (see Channel[queueFrame]). */
export const queueFrame: unique symbol = Symbol('interprocess.queueFrame');
/**
 * @internal Channel's count of received frames still being worked on (RpcChannel: requests whose
 * handler has not settled): `channel[busy](1)` when one starts, `channel[busy](-1)` when it is
 * done. Reading stops while it is at `channel[busyLimit]`, and goes on under half.
 */
export const busy: unique symbol = Symbol('interprocess.busy');
/** @internal See busy. */
export const busyLimit: unique symbol = Symbol('interprocess.busyLimit');
/**
 * @internal A property of a Channel: when set, each received frame goes to this function
 * (payload `buffer[start, end)`, its descriptors) instead of being decoded and delivered
 * (RpcChannel reads its envelope straight from the bytes). Descriptors are closed when it returns
 * unless kept (keepFds).
 */
export const frameHook: unique symbol = Symbol('interprocess.frameHook');

/**
 * Sends and receives whole messages over a byte stream. Events: 'message' (message, and fds when
 * descriptors came with it), 'error', 'close'.
 *
 * On a Unix stream socket of interprocess (connectUnix, listenUnix, unixSocketPair,
 * unixSocketFromFd) a message can carry descriptors: `send(message, { fds })`. They arrive as
 * ReceivedDescriptor objects with their message: the second argument of 'message' listeners
 * (present only when the message has some), or
 * `fds` in {@link Channel.withFds}. Take or convert them there; those left are closed once the
 * listeners return, or when the iteration moves on.
 */
export class Channel<T = unknown> extends EventEmitter implements AsyncIterable<T>, AsyncDisposable {
  readonly #transport: Transport;
  readonly #codec: Codec<T>;
  readonly #json: boolean;
  readonly #max: number;
  readonly #highWaterMark: number;
  readonly #sendHighWaterMark: number;
  readonly #reader: FrameReader<ReceivedDescriptor>;
  /** Where runs of json frames are laid out to be parsed together (see #parseRun). */
  #scratch: Buffer = EMPTY;
  readonly #inbox: Array<ChannelMessage<T>> = [];
  #waiter: Waiter | null = null;
  /** The message last handed to an iterator, whose descriptors are closed when it asks again. */
  #handedOut: readonly ReceivedDescriptor[] = NO_FDS;
  readonly #writer = new FrameWriter();
  /** The batch this tick's sends join (its frames are in #writer). */
  #open: Outcome | null = null;
  #flushQueued = false;
  readonly #batches: Batch[] = [];
  #unsettled = 0;
  #flushed: (() => void) | null = null;
  #readEnded = false;
  #writeEnded = false;
  #closing: Promise<void> | null = null;
  #error: InterprocessError | null = null;
  #destroyed = false;
  // Flow control (see the class comment).
  /** Reading is stopped: the transport is paused and the reader held. */
  #stopped = false;
  /** Bytes of replies queued, not yet written (in batches, and in the batch being filled: #openReplyBytes). */
  #replyBytes = 0;
  #openReplyBytes = 0;
  #busy = 0;
  #busyLimit = Infinity;
  /** The stream ended while received bytes waited unread: the end is handled after them. */
  #endWaits = false;

  constructor(stream: Duplex | StreamPair | UnixSocket, options: ChannelOptions<T> = {}) {
    super();
    const { maxFrameSize = DEFAULT_MAX_FRAME, highWaterMark = 64, sendHighWaterMark = DEFAULT_SEND_HIGH_WATER } = options;
    if (!Number.isInteger(maxFrameSize) || maxFrameSize < 0 || maxFrameSize > MAX_FRAME_LIMIT) {
      throw invalidArgument('options.maxFrameSize', `must be an integer from 0 to ${MAX_FRAME_LIMIT}; got ${String(maxFrameSize)}`);
    }
    if (!Number.isInteger(highWaterMark) || highWaterMark < 1) throw invalidArgument('options.highWaterMark', `must be a positive integer; got ${String(highWaterMark)}`);
    if (!Number.isInteger(sendHighWaterMark) || sendHighWaterMark < 1) throw invalidArgument('options.sendHighWaterMark', `must be a positive integer (bytes); got ${String(sendHighWaterMark)}`);
    this.#sendHighWaterMark = sendHighWaterMark;
    this.#codec = toCodec(options.codec, 'json');
    checkCodecTrust(this.#codec === (v8Codec as Codec<unknown>), acceptedRule(stream), options.trustPeers, 'Cannot make the channel');
    this.#json = this.#codec === (jsonCodec as Codec<unknown>);
    this.#max = maxFrameSize;
    this.#highWaterMark = highWaterMark;
    this.#reader = new FrameReader(
      maxFrameSize,
      (buffer, start, end, fds) => this.#onFrame(buffer, start, end, fds),
      (buffer, spans, count) => this.#onRun(buffer, spans, count),
    );
    const events: TransportEvents = {
      data: (chunk, fds) => {
        try {
          this.#reader.push(chunk, fds);
        } catch (error) {
          if (fds !== null) release(fds);
          this.destroy(error);
        }
      },
      end: () => this.#onEnd(),
      error: (error) => this.destroy(fromSystemError(error, "The channel's stream failed", 'The peer may have gone away.')),
      gone: () => this.#maybeClosed(),
      drain: () => this.#flush(),
    };
    if (stream instanceof UnixSocket) {
      if (stream.type !== 'stream') throw invalidArgument('stream', `is a ${stream.type} socket; a channel needs a stream socket (its frames are a byte stream)`);
      this.#transport = new UnixTransport(stream, events);
    } else {
      const pair = stream as StreamPair;
      const readable = typeof pair?.readable === 'object' && typeof pair?.writable === 'object' ? pair.readable : (stream as Duplex);
      const writable = readable === stream ? (stream as Duplex) : pair.writable;
      if (typeof readable?.on !== 'function' || typeof writable?.write !== 'function') {
        throw invalidType('stream', 'a Duplex stream, { readable, writable }, or a Unix stream socket', stream);
      }
      this.#transport = new StreamTransport(readable, writable, events);
    }
  }

  /** The error that ended the channel, if one did. */
  get error(): InterprocessError | null {
    return this.#error;
  }

  /** True once the channel is fully closed or destroyed. */
  get closed(): boolean {
    return this.#destroyed;
  }

  /** Whether this channel's stream can carry descriptors (a Unix stream socket of interprocess). */
  get passesFds(): boolean {
    return this.#transport.passesFds;
  }

  /**
   * Sends one message, with descriptors if `options.fds` has any. Resolves when it has been
   * handed to the OS; waits first while the stream is full (so awaiting each send paces a sender
   * to its peer). Sends of one tick leave together and share one promise. Rejects with
   * ERR_INTERPROCESS_FRAME_TOO_LARGE (the channel stays usable), the codec's error,
   * ERR_INTERPROCESS_NO_DESCRIPTORS (descriptors on a stream that cannot carry them), or
   * ERR_INTERPROCESS_CLOSED.
   */
  send(message: T, options?: ChannelSendOptions): Promise<void> {
    if (this.#closing || this.#destroyed) return Promise.reject(this.#error ?? closedError());
    let body: string | Uint8Array;
    try {
      body = encodeBody(this.#codec, message);
    } catch (error) {
      return Promise.reject(error);
    }
    return this[sendFrame](body, options, undefined);
  }

  /** @internal Sends one frame: `envelope` then `body` (text is sent as UTF-8). */
  [sendFrame](body: string | Uint8Array, options: ChannelSendOptions | undefined, envelope: Envelope | undefined): Promise<void> {
    try {
      return this.#add(body, options, envelope).promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * @internal Sends one frame with no promise for it (RpcChannel's requests and replies): throws
   * what send() would reject with at once; a later failure ends the channel, which is reported.
   */
  [queueFrame](body: string | Uint8Array, options: ChannelSendOptions | undefined, envelope: Envelope | undefined, reply = false): void {
    if (!reply) {
      this.#add(body, options, envelope);
      return;
    }
    // A reply: its bytes (text counted a byte a character, as FrameWriter#bytes does) count
    // against sendHighWaterMark until written. They belong to the open batch, which #add may seal.
    const bytes = HEADER_BYTES + 5 + (typeof body === 'string' ? body.length : body.byteLength);
    this.#openReplyBytes += bytes;
    try {
      this.#add(body, undefined, envelope);
    } catch (error) {
      this.#openReplyBytes -= bytes;
      throw error;
    }
    this.#replyBytes += bytes;
    if (!this.#stopped && this.#replyBytes >= this.#sendHighWaterMark) this.#stop();
  }

  /** @internal See busy. */
  [busy](delta: number): void {
    this.#busy += delta;
    if (delta > 0) {
      if (!this.#stopped && this.#busy >= this.#busyLimit) this.#stop();
    } else if (this.#stopped) this.#go();
  }

  /** @internal See busy. */
  set [busyLimit](limit: number) {
    this.#busyLimit = limit;
  }

  #add(body: string | Uint8Array, options: ChannelSendOptions | undefined, envelope: Envelope | undefined): Outcome {
    if (this.#closing || this.#destroyed) throw this.#error ?? closedError();
    const fds = options?.fds === undefined ? null : this.#descriptors(options.fds);
    if (fds !== null) {
      // Alone in its batch: the frames before it leave first, in order.
      this.#seal();
      this.#writer.add(body, this.#max, envelope);
      const settle = new Outcome();
      this.#queue({ chunks: this.#writer.take(), fds, settle, replyBytes: 0 });
      return settle;
    }
    this.#writer.add(body, this.#max, envelope);
    let open = this.#open;
    if (open === null) {
      open = this.#open = new Outcome();
      this.#unsettled++;
      this.#scheduleFlush();
    }
    if (this.#writer.bytes >= BATCH_BYTES) {
      // A full batch leaves now: the peer starts on it while we frame the next, and its sends
      // resolve without waiting for the rest of the tick's.
      this.#seal();
      this.#flush();
    }
    return open;
  }

  #descriptors(fds: Iterable<Sendable>): Int32Array | null {
    if (fds === null || typeof (fds as Iterable<unknown>)[Symbol.iterator] !== 'function') throw invalidType('options.fds', 'an array of descriptors', fds);
    const list = Array.from(fds, (value, i) => toDescriptor(value, `options.fds[${i}]`));
    if (list.length === 0) return null;
    if (!this.#transport.passesFds) {
      throw new InterprocessError(
        'ERR_INTERPROCESS_NO_DESCRIPTORS',
        "This channel's stream cannot carry descriptors: only a Unix stream socket of interprocess can (connectUnix(), listenUnix('stream', ...), unixSocketPair(), unixSocketFromFd()). Local sockets (net.Socket), pipes and FIFOs carry bytes only.",
      );
    }
    if (list.length > 253) throw invalidArgument('options.fds', `holds ${list.length} descriptors; one message carries at most 253 (SCM_MAX_FD)`);
    return Int32Array.from(list);
  }

  /** The frames of this tick so far become a batch of their own. */
  #seal(): void {
    if (this.#open === null) return;
    const settle = this.#open;
    this.#open = null;
    this.#unsettled--; // #queue counts it again
    const replyBytes = this.#openReplyBytes;
    this.#openReplyBytes = 0;
    this.#queue({ chunks: this.#writer.take(), fds: null, settle, replyBytes });
  }

  #queue(batch: Batch): void {
    this.#unsettled++;
    this.#batches.push(batch);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // nextTick runs after every promise continuation of this tick: a sender looping over awaited
    // sends fills the batch before it leaves.
    process.nextTick(() => {
      this.#seal(); // queues the batch without scheduling another flush
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    const transport = this.#transport;
    while (this.#batches.length > 0 && !transport.full && !this.#destroyed) {
      const batch = this.#batches.shift()!;
      transport.write(batch.chunks, batch.fds, (error?: unknown) => {
        if (error) batch.settle.reject(this.#error ?? fromSystemError(error, 'Sending failed'));
        else batch.settle.resolve();
        if (--this.#unsettled === 0) this.#flushed?.();
        if (batch.replyBytes > 0) {
          this.#replyBytes -= batch.replyBytes;
          if (this.#stopped) this.#go();
        }
      });
    }
  }

  /** @internal See frameHook. */
  [frameHook]: ((buffer: Buffer, start: number, end: number, fds: readonly ReceivedDescriptor[]) => void) | null = null;

  #onFrame(buffer: Buffer, start: number, end: number, fds: ReceivedDescriptor[] | null): void {
    const hook = this[frameHook];
    if (hook !== null) {
      const list = fds ?? NO_FDS;
      try {
        hook(buffer, start, end, list);
      } finally {
        if (list.length > 0 && !kept.has(list)) release(list);
      }
      // What the hook started (RpcChannel: a handler, a reply) counts now: stop before the next frame.
      if (!this.#stopped && (this.#busy >= this.#busyLimit || this.#replyBytes >= this.#sendHighWaterMark)) this.#stop();
      return;
    }
    let message: T;
    try {
      // json: the text straight from the received bytes, with no view of them made first.
      message = decodeSpan(this.#codec, buffer, start, end);
    } catch (error) {
      if (fds !== null) release(fds);
      throw new InterprocessError('ERR_INTERPROCESS_DECODE', `A received message could not be decoded: ${(error as Error)?.message ?? error}. The channel is closed.`, { cause: error });
    }
    this.#deliver(message, fds ?? NO_FDS);
  }

  /**
   * Frames that lay whole in one read: json ones are parsed together where they can be. Returns
   * how many it took: it stops where reading stops (see #stop).
   */
  #onRun(buffer: Buffer, spans: readonly number[], count: number): number {
    const together = this.#json && this[frameHook] === null;
    const reader = this.#reader;
    let i = 0;
    while (i < count) {
      let j = i;
      if (together) {
        // With no 'message' listener the values wait in the inbox: no more at once than it has room for.
        const room = this.listenerCount('message') > 0 ? count : i + this.#highWaterMark - this.#inbox.length + (this.#waiter ? 1 : 0);
        const limit = Math.min(count, room);
        while (j < limit && looksWhole(buffer, spans[2 * j]!, spans[2 * j + 1]!)) j++;
      }
      if (j - i >= 2 && this.#parseRun(buffer, spans, i, j)) {
        i = j;
        if (reader.held) return i;
        continue;
      }
      const to = Math.max(j, i + 1);
      while (i < to) {
        this.#onFrame(buffer, spans[2 * i]!, spans[2 * i + 1]!, null);
        i++;
        if (reader.held) return i;
      }
    }
    return count;
  }

  /**
   * Parses json frames from..to (of spans) with one JSON.parse and delivers them; false, having
   * delivered nothing, if they do not read as exactly one value each (then each frame is parsed on
   * its own, which finds the bad one).
   *
   * The frames are copied as they lie, each header turned into a separator ('[' for the first,
   * ',' after), with ']' after the last. Each separator holds a newline, which JSON allows only
   * outside strings, so a separator the parse accepted is outside every string; with every frame
   * beginning and ending with the brackets or quotes of one value (looksWhole) and as many values
   * as frames, each frame held one value, which JSON.parse reads exactly as it reads it alone.
   * (Frames crafted to be unbalanced in ways that cancel out could pass, but they only yield
   * values that their peer could as well have sent in well-formed frames.)
   */
  #parseRun(buffer: Buffer, spans: readonly number[], from: number, to: number): boolean {
    const first = spans[2 * from]! - HEADER_BYTES;
    const size = spans[2 * to - 1]! - first + 1;
    // The copy keeps the bytes' address modulo 16 (see skewOf): the scratch buffer is its own allocation.
    const skew = (skewOf(buffer) + first) & 15;
    let scratch = this.#scratch;
    if (scratch.length < skew + size) scratch = this.#scratch = Buffer.allocUnsafeSlow(Math.max(16 + size, 2 * scratch.length));
    buffer.copy(scratch, skew, first, size - 1 + first);
    for (let k = from; k < to; k++) {
      const at = skew + spans[2 * k]! - HEADER_BYTES - first;
      scratch[at] = k === from ? 0x5b : 0x2c; // '[' or ','
      scratch[at + 1] = 0x0a; // '\n'
      scratch[at + 2] = 0x20;
      scratch[at + 3] = 0x20;
    }
    scratch[skew + size - 1] = 0x5d; // ']'
    let values: unknown;
    try {
      values = JSON.parse(readText(scratch, skew, skew + size));
    } catch {
      return false;
    }
    if (!Array.isArray(values) || values.length !== to - from) return false;
    for (let k = 0; k < values.length; k++) this.#deliver(values[k] as T, NO_FDS);
    return true;
  }

  #deliver(message: T, fds: readonly ReceivedDescriptor[]): void {
    if (this.listenerCount('message') > 0) {
      try {
        if (fds.length === 0) this.emit('message', message);
        else this.emit('message', message, fds);
      } finally {
        if (fds.length > 0 && !kept.has(fds)) release(fds);
      }
    } else if (this.#waiter) {
      const waiter = this.#waiter;
      this.#waiter = null;
      this.#handedOut = fds;
      waiter.resolve({ message, fds });
    } else {
      this.#inbox.push({ message, fds });
      if (this.#inbox.length >= this.#highWaterMark && !this.#stopped) this.#stop();
    }
  }

  #onEnd(): void {
    if (this.#reader.backlogged) {
      // Bytes the peer sent before its end wait unread (reading is stopped): the end comes after them.
      this.#endWaits = true;
      return;
    }
    this.#readEnded = true;
    const carried = this.#reader.carried;
    if (carried.length > 0) release(carried);
    if (this.#reader.pending > 0) {
      const expected = this.#reader.expected;
      this.destroy(new InterprocessError('ERR_INTERPROCESS_TRUNCATED', `The peer closed the stream in the middle of a frame${expected >= 0 ? ` (a frame of ${expected} bytes)` : ' (in its header)'}; that message is lost and the channel is closed.`));
      return;
    }
    this.#wake();
    // The peer is done sending: finish ours (everything queued first), then the channel closes.
    void this.close().catch(() => {});
  }

  /** Stops reading from the peer (flow control): the transport pauses, the reader keeps what it has not read. */
  #stop(): void {
    if (this.#destroyed) return;
    this.#stopped = true;
    this.#reader.hold();
    this.#transport.pause();
  }

  /** Reads on if every bound is back under half (see the class comment). */
  #go(): void {
    if (this.#destroyed || !this.#stopped) return;
    if (this.#inbox.length >= this.#highWaterMark / 2 || this.#replyBytes >= this.#sendHighWaterMark / 2 || this.#busy > this.#busyLimit / 2) return;
    this.#stopped = false;
    try {
      this.#reader.resume(); // may stop again
    } catch (error) {
      this.destroy(error);
      return;
    }
    if (this.#stopped || this.#destroyed) return;
    if (this.#endWaits) {
      this.#endWaits = false;
      this.#onEnd();
      return;
    }
    this.#transport.resume();
  }

  #wake(): void {
    if (this.#waiter && this.#inbox.length === 0 && (this.#readEnded || this.#destroyed)) {
      const waiter = this.#waiter;
      this.#waiter = null;
      if (this.#error) waiter.reject(this.#error);
      else waiter.resolve(null);
    }
  }

  /**
   * Closes in order: everything sent before close() is delivered, then our side ends; messages
   * the peer sent before its own end still arrive. Resolves when our side is done.
   */
  close(): Promise<void> {
    if (this.#destroyed) return this.#error ? Promise.reject(this.#error) : Promise.resolve();
    this.#closing ??= (async () => {
      if (this.#unsettled > 0) await new Promise<void>((resolve) => (this.#flushed = resolve));
      if (this.#destroyed) {
        if (this.#error) throw this.#error;
        return;
      }
      await new Promise<void>((resolve) => this.#transport.end(resolve));
      this.#writeEnded = true;
      this.#maybeClosed();
    })();
    return this.#closing;
  }

  #maybeClosed(): void {
    if (this.#destroyed) return;
    const gone = this.#transport.gone;
    const readDone = this.#readEnded || gone;
    if (readDone && this.#writeEnded) this.destroy();
    else if (gone && !this.#readEnded && !this.#endWaits) this.destroy(closedError());
  }

  /** Ends the channel at once: queued sends fail, the streams are destroyed. */
  destroy(error?: unknown): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (error !== undefined) this.#error = error instanceof InterprocessError ? error : fromSystemError(error, 'The channel failed');
    const failure = this.#error ?? closedError();
    this.#seal();
    for (const batch of this.#batches.splice(0)) {
      batch.settle.reject(failure);
      if (--this.#unsettled === 0) this.#flushed?.();
    }
    const carried = this.#reader.carried;
    if (carried.length > 0) release(carried);
    this.#reader.discard();
    this.#transport.destroy();
    this.#wake();
    if (this.#error && this.listenerCount('error') > 0) this.emit('error', this.#error);
    this.emit('close', this.#error ?? undefined);
  }

  #next(): Promise<ChannelMessage<T> | null> {
    if (this.#handedOut.length > 0) {
      release(this.#handedOut);
      this.#handedOut = NO_FDS;
    }
    if (this.#inbox.length > 0) {
      const item = this.#inbox.shift()!;
      if (this.#stopped) this.#go();
      this.#handedOut = item.fds;
      return Promise.resolve(item);
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#readEnded || this.#destroyed) return Promise.resolve(null);
    if (this.#waiter) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'This channel is already being iterated; take messages from one loop at a time.'));
    return new Promise((resolve, reject) => (this.#waiter = { resolve: resolve as Waiter['resolve'], reject }));
  }

  #return = async (): Promise<IteratorReturnResult<undefined>> => {
    if (this.#handedOut.length > 0) {
      release(this.#handedOut);
      this.#handedOut = NO_FDS;
    }
    await this.close().catch(() => {});
    return { value: undefined, done: true };
  };

  /** Received messages in order; ends when the peer ends, throws the channel's error. */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () =>
        this.#next().then((item) => {
          if (item === null) return { value: undefined, done: true };
          if (item.fds.length > 0) {
            release(item.fds); // out of reach of this loop: withFds() gives them
            this.#handedOut = NO_FDS;
          }
          return { value: item.message, done: false };
        }),
      return: this.#return,
    };
  }

  /**
   * Received messages with their descriptors: `for await (const { message, fds } of
   * channel.withFds())`. Descriptors not taken or converted (see ReceivedDescriptor) are closed
   * when the loop asks for the next message or ends.
   */
  withFds(): AsyncIterable<ChannelMessage<T>> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => this.#next().then((item) => (item === null ? { value: undefined, done: true } : { value: item, done: false })),
        return: this.#return,
      }),
    };
  }

  /** `await using channel = ...` closes it in order at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
