/**
 * Requests, replies and events on top of a channel. Each frame's payload starts with a kind byte;
 * see docs/channel.md for the exact layout, so peers in other languages can implement it:
 *   0 message  [0][body]
 *   1 request  [1][u32 id][u16 method length][method UTF-8][body]
 *   2 reply    [2][u32 id][body]
 *   3 failure  [3][u32 id][JSON {"code","message"}]
 *   4 event    [4][u16 name length][name UTF-8][body]
 * A body is the codec's encoding of the value; an empty body means `undefined`.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { acceptedRule, checkCodecTrust } from '../access.js';
import { InterprocessError, abortError, invalidArgument, invalidType } from '../errors.js';
import type { ReceivedDescriptor } from '../unix-socket/descriptors.js';
import type { UnixSocket } from '../unix-socket/socket.js';
import { Channel, type ChannelOptions, type ChannelSendOptions, type StreamPair, busy, busyLimit, frameHook, keepFds, queueFrame, release, sendFrame } from './channel.js';
import { type Codec, decodeSpan, encodeBody, toCodec, v8Codec } from './codec.js';
import { type Envelope, readText } from './frame.js';

const MESSAGE = 0;
const REQUEST = 1;
const REPLY = 2;
const FAILURE = 3;
const EVENT = 4;

/** Options of an {@link RpcChannel}. */
export interface RpcOptions<T> extends ChannelOptions<T> {
  /** Default timeout of request(), in milliseconds (default: none). */
  requestTimeout?: number;
  /**
   * The peer's requests answered at once: while this many handlers have not settled, the channel
   * stops reading from the peer, and reads on when half of them have (default 1024). Nothing is
   * refused or dropped: the peer's further requests wait in its own send queue and the kernel's.
   */
  maxPendingRequests?: number;
}

/** Options of {@link RpcChannel.request}. */
export interface RequestOptions extends ChannelSendOptions {
  /** Reject with ETIMEDOUT after this many milliseconds (overrides the channel's requestTimeout). */
  timeout?: number;
  /** Reject with ABORT_ERR when aborted; a late reply is then ignored. */
  signal?: AbortSignal;
}

/**
 * Answers requests for one method; what it returns (or resolves to) is the reply. `fds` are the
 * descriptors sent with the request (on a Unix stream socket): take or convert them before the
 * returned promise settles, the rest are closed then.
 */
export type RequestHandler<T> = (body: T, method: string, fds: readonly ReceivedDescriptor[]) => T | Promise<T>;

interface Call {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

const EMPTY = new Uint8Array(0);
/** Default maxPendingRequests. */
const DEFAULT_MAX_PENDING = 1024;

function checkName(value: unknown, argument: string): string {
  if (typeof value !== 'string') throw invalidType(argument, 'a string', value);
  if (Buffer.byteLength(value) > 0xffff) throw invalidArgument(argument, 'must be at most 65535 bytes of UTF-8');
  return value;
}

/**
 * A channel with requests (correlated replies, timeouts, AbortSignal), events both ways and plain
 * messages. Events: 'message' (body), 'event' (name, body), 'error', 'close'.
 */
export class RpcChannel<T = unknown> extends EventEmitter implements AsyncDisposable {
  /** The underlying channel (raw frames). */
  readonly channel: Channel<Buffer>;
  readonly #codec: Codec<T>;
  readonly #requestTimeout: number | undefined;
  readonly #calls = new Map<number, Call>();
  readonly #handlers = new Map<string, RequestHandler<T>>();
  #nextId = 1;
  /** The method of the last request, already checked. */
  #lastMethod: string | null = null;

  constructor(stream: Duplex | StreamPair | UnixSocket, options: RpcOptions<T> = {}) {
    super();
    const { codec, requestTimeout, maxPendingRequests = DEFAULT_MAX_PENDING, ...channelOptions } = options;
    this.#codec = toCodec(codec, 'json');
    checkCodecTrust(this.#codec === (v8Codec as Codec<unknown>), acceptedRule(stream), channelOptions.trustPeers, 'Cannot make the RPC channel');
    if (requestTimeout !== undefined && !(requestTimeout >= 0)) throw invalidArgument('options.requestTimeout', `must be a non-negative number; got ${String(requestTimeout)}`);
    if (!Number.isInteger(maxPendingRequests) || maxPendingRequests < 1) throw invalidArgument('options.maxPendingRequests', `must be a positive integer; got ${String(maxPendingRequests)}`);
    this.#requestTimeout = requestTimeout;
    this.channel = new Channel<Buffer>(stream, { ...channelOptions, codec: 'raw' });
    this.channel[busyLimit] = maxPendingRequests;
    // Frames come straight from the channel's reader, as bytes in a buffer (no view, no event).
    this.channel[frameHook] = (buffer, start, end, fds) => {
      try {
        this.#receive(buffer, start, end, fds);
      } catch (error) {
        this.channel.destroy(error instanceof InterprocessError ? error : new InterprocessError('ERR_INTERPROCESS_DECODE', `A received frame is malformed: ${(error as Error)?.message}; the channel is closed.`, { cause: error }));
      }
    };
    this.channel.on('error', (error) => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    this.channel.on('close', (error?: InterprocessError) => {
      const failure = error ?? new InterprocessError('ERR_INTERPROCESS_CLOSED', 'The channel closed before the reply came');
      const calls = [...this.#calls.values()];
      this.#calls.clear();
      for (const call of calls) call.reject(failure);
      this.emit('close', error);
    });
  }

  #body(value: T | undefined): string | Uint8Array {
    return value === undefined ? EMPTY : encodeBody(this.#codec, value, 'body');
  }

  #decode(buffer: Buffer, at: number, end: number): T {
    return end <= at ? (undefined as T) : decodeSpan(this.#codec, buffer, at, end);
  }

  /** The u16-length-prefixed name at buffer[at], and where what follows it starts. */
  #name(buffer: Buffer, at: number, end: number): string {
    if (at + 2 > end) throw new Error('the frame ends inside a name');
    const length = (buffer[at]! << 8) | buffer[at + 1]!;
    const start = at + 2;
    this.#after = start + length;
    if (this.#after > end) throw new Error('name runs past the end of the frame');
    // A peer mostly repeats its last name: the same bytes give the same string, without decoding.
    const last = this.#lastNameBytes;
    if (length === last.length && length <= 64) {
      let same = true;
      for (let i = 0; i < length && same; i++) same = buffer[start + i] === last[i];
      if (same) return this.#lastName;
    }
    const name = readText(buffer, start, this.#after);
    if (length <= 64) {
      this.#lastNameBytes = Buffer.from(buffer.subarray(start, this.#after));
      this.#lastName = name;
    }
    return name;
  }

  /** The last short name read, and its bytes. */
  #lastName = '';
  #lastNameBytes: Buffer = Buffer.alloc(0);

  /** Where the last #name() ended. */
  #after = 0;

  /** Sends one frame of `kind`; rejects (never throws) if the body cannot be encoded. */
  #send(kind: number, id: number, name: string | null, value: T | undefined, options: ChannelSendOptions | undefined): Promise<void> {
    let body: string | Uint8Array;
    try {
      body = this.#body(value);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.channel[sendFrame](body, options, { kind, id, name } satisfies Envelope);
  }

  #receive(buffer: Buffer, start: number, end: number, fds: readonly ReceivedDescriptor[]): void {
    if (end - start < 1) throw new Error('empty frame');
    const kind = buffer[start]!;
    switch (kind) {
      case MESSAGE: {
        const body = this.#decode(buffer, start + 1, end);
        if (fds.length === 0) this.emit('message', body);
        else this.emit('message', body, fds);
        return;
      }
      case REQUEST: {
        if (end - start < 5) throw new Error('the frame ends inside a request id');
        const id = buffer.readUInt32BE(start + 1);
        const method = this.#name(buffer, start + 5, end);
        this.#answer(id, method, buffer, this.#after, end, fds);
        return;
      }
      case REPLY:
      case FAILURE: {
        if (end - start < 5) throw new Error('the frame ends inside a request id');
        const id = buffer.readUInt32BE(start + 1);
        const call = this.#calls.get(id);
        if (!call) return; // timed out or aborted: a late reply is dropped
        // Decoded before the call is taken: a malformed reply ends the channel, which fails it.
        if (kind === REPLY) {
          const value = this.#decode(buffer, start + 5, end);
          this.#calls.delete(id);
          call.resolve(value);
        } else {
          const { code, message } = JSON.parse(buffer.toString('utf8', start + 5, end)) as { code?: string; message?: string };
          this.#calls.delete(id);
          call.reject(new InterprocessError(typeof code === 'string' ? code : 'ERR_INTERPROCESS_REMOTE', `The peer's handler failed: ${message ?? 'no message'}`));
        }
        return;
      }
      case EVENT: {
        const name = this.#name(buffer, start + 1, end);
        const body = this.#decode(buffer, this.#after, end);
        if (fds.length === 0) this.emit('event', name, body);
        else this.emit('event', name, body, fds);
        return;
      }
      default:
        throw new Error(`unknown frame kind ${kind}`);
    }
  }

  #answer(id: number, method: string, buffer: Buffer, at: number, end: number, fds: readonly ReceivedDescriptor[]): void {
    let result: T | Promise<T>;
    try {
      const handler = this.#handlers.get(method);
      if (!handler) throw new InterprocessError('ERR_INTERPROCESS_NO_HANDLER', `No handler for '${method}' on this side`);
      result = handler(this.#decode(buffer, at, end), method, fds);
    } catch (error) {
      this.#fail(id, error);
      return;
    }
    if (typeof (result as Promise<T> | undefined)?.then === 'function') {
      // The request's descriptors stay open until the handler is done with them. It counts as
      // pending (maxPendingRequests) until then: its reply counts as unwritten bytes after.
      keepFds(fds);
      const channel = this.channel;
      channel[busy](1);
      (result as Promise<T>).then(
        (value) => {
          release(fds);
          this.#reply(id, value);
          channel[busy](-1);
        },
        (error) => {
          release(fds);
          this.#fail(id, error);
          channel[busy](-1);
        },
      );
    } else {
      this.#reply(id, result as T);
    }
  }

  #reply(id: number, value: T): void {
    // A body that cannot be encoded (or is too large) is the handler's failure; the channel
    // reports its own.
    try {
      this.channel[queueFrame](this.#body(value), undefined, { kind: REPLY, id, name: null }, true);
    } catch (error) {
      if (!this.channel.closed) this.#fail(id, error);
    }
  }

  #fail(id: number, error: unknown): void {
    const e = error as { code?: unknown; message?: unknown };
    const failure = { code: typeof e?.code === 'string' ? e.code : 'ERR_INTERPROCESS_REMOTE', message: typeof e?.message === 'string' ? e.message : String(error) };
    try {
      this.channel[queueFrame](JSON.stringify(failure), undefined, { kind: FAILURE, id, name: null }, true);
    } catch {
      // the channel is closed: it reports why
    }
  }

  /** Sends a plain message (the peer gets a 'message' event with it and its descriptors). */
  send(message: T, options?: ChannelSendOptions): Promise<void> {
    return this.#send(MESSAGE, -1, null, message, options);
  }

  /** Sends an event (the peer gets an 'event' event with this name, body and descriptors). */
  notify(event: string, body?: T, options?: ChannelSendOptions): Promise<void> {
    try {
      checkName(event, 'event');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#send(EVENT, -1, event, body, options);
  }

  /** Answers requests for `method` with `handler`; returns a function that removes it. */
  handle(method: string, handler: RequestHandler<T>): () => void {
    checkName(method, 'method');
    if (typeof handler !== 'function') throw invalidType('handler', 'a function', handler);
    this.#handlers.set(method, handler);
    return () => {
      if (this.#handlers.get(method) === handler) this.#handlers.delete(method);
    };
  }

  /**
   * Asks the peer's handler for `method` and resolves with its reply. Rejects with the peer's
   * error code (ERR_INTERPROCESS_NO_HANDLER when it has none), ETIMEDOUT, ABORT_ERR, or
   * ERR_INTERPROCESS_CLOSED when the channel closes first.
   */
  request<R = T>(method: string, body?: T, options: RequestOptions = {}): Promise<R> {
    let encoded: string | Uint8Array;
    try {
      if (method !== this.#lastMethod) {
        checkName(method, 'method');
        this.#lastMethod = method;
      }
      if (options.signal?.aborted) throw abortError(options.signal);
      encoded = this.#body(body);
    } catch (error) {
      return Promise.reject(error);
    }
    const { timeout = this.#requestTimeout, signal } = options;
    const id = this.#nextId;
    this.#nextId = this.#nextId === 0xffffffff ? 1 : this.#nextId + 1;
    if (timeout === undefined && signal === undefined) {
      // Settled only by the reply (or the channel's close), which takes the call from #calls.
      return new Promise<R>((resolve, reject) => {
        this.#calls.set(id, { resolve: resolve as (value: unknown) => void, reject });
        try {
          this.channel[queueFrame](encoded, options, { kind: REQUEST, id, name: method });
        } catch (error) {
          this.#calls.delete(id);
          reject(error);
        }
      });
    }
    return new Promise<R>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const onAbort = () => finish(abortError(signal!));
      const finish = (error: unknown, value?: unknown) => {
        if (settled) return;
        settled = true;
        this.#calls.delete(id);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve(value as R);
        else reject(error);
      };
      this.#calls.set(id, { resolve: (value) => finish(undefined, value), reject: (error) => finish(error) });
      if (timeout !== undefined) timer = setTimeout(() => finish(new InterprocessError('ETIMEDOUT', `No reply to '${method}' within ${timeout} ms`)), timeout);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        // A failure after this ends the channel, and its 'close' fails every pending call.
        this.channel[queueFrame](encoded, options, { kind: REQUEST, id, name: method });
      } catch (error) {
        finish(error);
      }
    });
  }

  /** Closes in order (see Channel#close). */
  close(): Promise<void> {
    return this.channel.close();
  }

  /** Ends at once; pending requests fail. */
  destroy(error?: unknown): void {
    this.channel.destroy(error);
  }

  /** `await using rpc = ...` closes it in order at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
