/**
 * A message channel over any byte stream of ours: a local socket, a pipe pair, a FIFO pair, or
 * any Node Duplex. Whole messages in, whole messages out; on the wire only length-prefixed frames
 * (see docs/channel.md), so a peer in any language can speak it.
 *
 * Safety: a frame over the limit, a payload the codec cannot read, a peer that vanishes mid-frame
 * or a stream error ends this channel with a clear error, and only this channel: never a crash
 * (the error is emitted only to 'error' listeners; otherwise it surfaces from send(), iteration,
 * and the 'close' event).
 * Backpressure: send() waits while the stream is full, so a slow peer makes senders wait; and the
 * channel stops reading while too many received messages are waiting for a consumer.
 * Orderly close: close() sends everything sent before it, then ends our side; what the peer sent
 * before its end still arrives.
 */
import { EventEmitter } from 'node:events';
import type { Duplex, Readable, Writable } from 'node:stream';
import { InterprocessError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { type Codec, type CodecName, toCodec } from './codec.js';
import { DEFAULT_MAX_FRAME, FrameReader, MAX_FRAME_LIMIT, frameHeader, frameTooLarge } from './frame.js';

/** Options of a {@link Channel}. */
export interface ChannelOptions<T> {
  /** How messages become bytes: 'json' (default), 'raw' (Buffers), 'v8' (structured clone), or your own. */
  codec?: CodecName | Codec<T>;
  /** Largest frame payload accepted or sent, in bytes (default 16 MiB, at most 2 GiB - 1). */
  maxFrameSize?: number;
  /** Received messages held for a consumer before the channel stops reading (default 64). */
  highWaterMark?: number;
}

/** Separate streams for each direction, e.g. the ends of two pipes or two FIFOs. */
export interface StreamPair {
  /** Where the peer's messages come from. */
  readable: Readable;
  /** Where our messages go. */
  writable: Writable;
}

interface Outgoing {
  header: Buffer;
  payload: Uint8Array;
  resolve(): void;
  reject(error: unknown): void;
}

interface Waiter<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: unknown): void;
}

function closedError(): InterprocessError {
  return new InterprocessError('ERR_INTERPROCESS_CLOSED', 'The channel is closed');
}

/** Sends and receives whole messages over a byte stream. Events: 'message', 'error', 'close'. */
export class Channel<T = unknown> extends EventEmitter implements AsyncIterable<T>, AsyncDisposable {
  readonly #readable: Readable;
  readonly #writable: Writable;
  /** One Duplex for both directions (as opposed to a pair of streams). */
  readonly #duplex: boolean;
  readonly #codec: Codec<T>;
  readonly #max: number;
  readonly #highWaterMark: number;
  readonly #reader: FrameReader;
  readonly #inbox: T[] = [];
  #waiter: Waiter<T> | null = null;
  readonly #outgoing: Outgoing[] = [];
  #unsettled = 0;
  #flushed: (() => void) | null = null;
  #corked = false;
  #readEnded = false;
  #writeEnded = false;
  #closing: Promise<void> | null = null;
  #error: InterprocessError | null = null;
  #destroyed = false;

  constructor(stream: Duplex | StreamPair, options: ChannelOptions<T> = {}) {
    super();
    const pair = stream as StreamPair;
    const readable = typeof pair?.readable === 'object' && typeof pair?.writable === 'object' ? pair.readable : (stream as Duplex);
    const writable = readable === stream ? (stream as Duplex) : pair.writable;
    if (typeof readable?.on !== 'function' || typeof writable?.write !== 'function') {
      throw invalidType('stream', 'a Duplex stream or { readable, writable }', stream);
    }
    const { maxFrameSize = DEFAULT_MAX_FRAME, highWaterMark = 64 } = options;
    if (!Number.isInteger(maxFrameSize) || maxFrameSize < 0 || maxFrameSize > MAX_FRAME_LIMIT) {
      throw invalidArgument('options.maxFrameSize', `must be an integer from 0 to ${MAX_FRAME_LIMIT}; got ${String(maxFrameSize)}`);
    }
    if (!Number.isInteger(highWaterMark) || highWaterMark < 1) throw invalidArgument('options.highWaterMark', `must be a positive integer; got ${String(highWaterMark)}`);
    this.#readable = readable;
    this.#writable = writable;
    this.#duplex = (readable as unknown) === writable;
    this.#codec = toCodec(options.codec, 'json');
    this.#max = maxFrameSize;
    this.#highWaterMark = highWaterMark;
    this.#reader = new FrameReader(maxFrameSize, (payload) => this.#onFrame(payload));
    // The channel decides when to end our side (after its own queue), not the stream.
    if (this.#duplex) (readable as Duplex).allowHalfOpen = true;

    readable.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk);
      } catch (error) {
        this.destroy(error);
      }
    });
    readable.on('end', () => this.#onEnd());
    readable.on('error', (error) => this.destroy(fromSystemError(error, 'The channel\'s stream failed', 'The peer may have gone away.')));
    if (!this.#duplex) writable.on('error', (error) => this.destroy(fromSystemError(error, 'The channel\'s stream failed', 'The peer may have gone away.')));
    readable.on('close', () => this.#maybeClosed());
    writable.on('drain', () => this.#flush());
  }

  /** The error that ended the channel, if one did. */
  get error(): InterprocessError | null {
    return this.#error;
  }

  /** True once the channel is fully closed or destroyed. */
  get closed(): boolean {
    return this.#destroyed;
  }

  /**
   * Sends one message. Resolves when it has been handed to the OS; waits first while the stream
   * is full (so awaiting each send paces a sender to its peer). Rejects with
   * ERR_INTERPROCESS_FRAME_TOO_LARGE (the channel stays usable), the codec's error, or
   * ERR_INTERPROCESS_CLOSED.
   */
  send(message: T): Promise<void> {
    if (this.#closing || this.#destroyed) return Promise.reject(this.#error ?? closedError());
    let payload: Uint8Array;
    try {
      payload = this.#codec.encode(message);
    } catch (error) {
      return Promise.reject(error);
    }
    if (payload.byteLength > this.#max) return Promise.reject(frameTooLarge(payload.byteLength, this.#max, 'send'));
    return new Promise<void>((resolve, reject) => {
      this.#unsettled++;
      const settle = () => {
        if (--this.#unsettled === 0) this.#flushed?.();
      };
      const item: Outgoing = {
        header: frameHeader(payload.byteLength),
        payload,
        resolve: () => {
          settle();
          resolve();
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      if (this.#outgoing.length > 0 || this.#writable.writableNeedDrain) this.#outgoing.push(item);
      else this.#write(item);
    });
  }

  #write(item: Outgoing): void {
    const writable = this.#writable;
    if (!this.#corked) {
      // Everything sent in this tick leaves in one writev.
      this.#corked = true;
      writable.cork();
      process.nextTick(() => {
        this.#corked = false;
        writable.uncork();
      });
    }
    const done = (error?: Error | null) => (error ? item.reject(this.#error ?? fromSystemError(error, 'Sending failed')) : item.resolve());
    if (item.payload.byteLength === 0) {
      writable.write(item.header, done);
    } else {
      writable.write(item.header);
      writable.write(item.payload, done);
    }
  }

  #flush(): void {
    while (this.#outgoing.length > 0 && !this.#writable.writableNeedDrain && !this.#destroyed) this.#write(this.#outgoing.shift()!);
  }

  #onFrame(payload: Buffer): void {
    let message: T;
    try {
      message = this.#codec.decode(payload);
    } catch (error) {
      throw new InterprocessError('ERR_INTERPROCESS_DECODE', `A received message could not be decoded: ${(error as Error)?.message ?? error}. The channel is closed.`, { cause: error });
    }
    if (this.listenerCount('message') > 0) {
      this.emit('message', message);
    } else if (this.#waiter) {
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter.resolve({ value: message, done: false });
    } else {
      this.#inbox.push(message);
      if (this.#inbox.length >= this.#highWaterMark) this.#readable.pause();
    }
  }

  #onEnd(): void {
    this.#readEnded = true;
    if (this.#reader.pending > 0) {
      const expected = this.#reader.expected;
      this.destroy(new InterprocessError('ERR_INTERPROCESS_TRUNCATED', `The peer closed the stream in the middle of a frame${expected >= 0 ? ` (a frame of ${expected} bytes)` : ' (in its header)'}; that message is lost and the channel is closed.`));
      return;
    }
    this.#wake();
    // The peer is done sending: finish ours (everything queued first), then the channel closes.
    void this.close().catch(() => {});
  }

  #wake(): void {
    if (this.#waiter && this.#inbox.length === 0 && (this.#readEnded || this.#destroyed)) {
      const waiter = this.#waiter;
      this.#waiter = null;
      if (this.#error) waiter.reject(this.#error);
      else waiter.resolve({ value: undefined, done: true });
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
      await new Promise<void>((resolve) => this.#writable.end(resolve));
      this.#writeEnded = true;
      this.#maybeClosed();
    })();
    return this.#closing;
  }

  #maybeClosed(): void {
    if (this.#destroyed) return;
    const readDone = this.#readEnded || (this.#readable as Readable).destroyed;
    if (readDone && this.#writeEnded) this.destroy();
    else if ((this.#readable as Readable).destroyed && !this.#readEnded) this.destroy(closedError());
  }

  /** Ends the channel at once: queued sends fail, the streams are destroyed. */
  destroy(error?: unknown): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (error !== undefined) this.#error = error instanceof InterprocessError ? error : fromSystemError(error, 'The channel failed');
    const failure = this.#error ?? closedError();
    for (const item of this.#outgoing.splice(0)) item.reject(failure);
    (this.#readable as Readable).destroy();
    if (!this.#duplex) this.#writable.destroy();
    this.#wake();
    if (this.#error && this.listenerCount('error') > 0) this.emit('error', this.#error);
    this.emit('close', this.#error ?? undefined);
  }

  /** Received messages in order; ends when the peer ends, throws the channel's error. */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.#inbox.length > 0) {
          const value = this.#inbox.shift()!;
          if (this.#inbox.length < this.#highWaterMark / 2 && this.#readable.isPaused()) this.#readable.resume();
          return Promise.resolve({ value, done: false });
        }
        if (this.#error) return Promise.reject(this.#error);
        if (this.#readEnded || this.#destroyed) return Promise.resolve({ value: undefined, done: true });
        if (this.#waiter) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'This channel is already being iterated; take messages from one loop at a time.'));
        return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
      },
      return: async () => {
        await this.close().catch(() => {});
        return { value: undefined, done: true };
      },
    };
  }

  /** `await using channel = ...` closes it in order at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
