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
import { InterprocessError, abortError, invalidArgument } from '../errors.js';
import type { ReceivedDescriptor } from '../unix-socket/descriptors.js';
import type { UnixSocket } from '../unix-socket/socket.js';
import { PendingCalls } from './calls.js';
import { Channel } from './channel.js';
import { keepFds, release } from './fds.js';
import { busy, busyLimit, deliver, frameHook, queueFrame, sendFrame, transientFrames } from './symbols.js';
import { EVENT, FAILURE, MESSAGE, REPLY, REQUEST, type RequestHandler, type RequestOptions, type RpcChannelEvents, type RpcOptions, type StoredHandler, checkName, serverHandlers, setHandler } from './rpc-types.js';
import type { ChannelIteratorOptions, ChannelSendOptions, StreamPair } from './types.js';
import { type Codec, decodeSpan, encodeBody, jsonCodec, toCodec, v8Codec } from './codec.js';
import type { Envelope } from './frame.js';
import { NameReader } from './names.js';

const EMPTY = new Uint8Array(0);
/** Default maxPendingRequests. */
const DEFAULT_MAX_PENDING = 1024;

/**
 * A channel with requests (correlated replies, timeouts, AbortSignal), events both ways and plain
 * messages. Events (see {@link RpcChannelEvents}): 'message' (body), 'event' (name, body),
 * 'error', 'end', 'close'. Async-iterable over the plain messages (`for await (const body of
 * rpc)`); requests and events never go to iteration.
 */
export class RpcChannel<T = unknown> extends EventEmitter<RpcChannelEvents<T>> implements AsyncIterable<T>, AsyncDisposable {
  /** The underlying channel (raw frames). */
  readonly channel: Channel<Buffer>;
  readonly #codec: Codec<T>;
  readonly #requestTimeout: number | undefined;
  readonly #calls = new PendingCalls();
  readonly #handlers = new Map<string, StoredHandler>();
  /** @internal See serverHandlers. */
  [serverHandlers]: ReadonlyMap<string, StoredHandler> | null = null;
  /** A loop over the plain messages has begun: with no 'message' listener they wait for it. */
  #iterated = false;
  #nextId = 1;
  readonly #names = new NameReader();
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
    // With json, every body is parsed from the bytes before a handler or listener sees it.
    this.channel[transientFrames] = this.#codec === (jsonCodec as Codec<unknown>);
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
    this.channel.on('end', () => this.emit('end'));
    this.channel.on('close', (error?: InterprocessError) => {
      const failure = error ?? new InterprocessError('ERR_INTERPROCESS_CLOSED', 'The channel closed before the reply came');
      this.#calls.failAll(failure);
      this.emit('close', error);
    });
  }

  #body(value: T | undefined): string | Uint8Array {
    return value === undefined ? EMPTY : encodeBody(this.#codec, value, 'body');
  }

  #decode(buffer: Buffer, at: number, end: number): T {
    return end <= at ? (undefined as T) : decodeSpan(this.#codec, buffer, at, end);
  }

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
        if (this.listenerCount('message') > 0) {
          if (fds.length === 0) this.emit('message', body);
          else this.emit('message', body, fds);
        } else if (this.#iterated) {
          this.channel[deliver](body, fds);
        }
        return;
      }
      case REQUEST: {
        if (end - start < 5) throw new Error('the frame ends inside a request id');
        const id = buffer.readUInt32BE(start + 1);
        const method = this.#names.read(buffer, start + 5, end);
        this.#answer(id, method, buffer, this.#names.after, end, fds);
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
        const name = this.#names.read(buffer, start + 1, end);
        const body = this.#decode(buffer, this.#names.after, end);
        if (fds.length === 0) this.emit('event', name, body);
        else this.emit('event', name, body, fds);
        return;
      }
      default:
        throw new Error(`unknown frame kind ${kind}`);
    }
  }

  #answer(id: number, method: string, buffer: Buffer, at: number, end: number, fds: readonly ReceivedDescriptor[]): void {
    let result: unknown;
    try {
      const handler = this.#handlers.get(method) ?? this[serverHandlers]?.get(method);
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

  /**
   * Answers requests for `method` with `handler`; returns a function that removes it. The handler's
   * body and reply types may be narrower than T, per method: `handle('add', ([a, b]: [number,
   * number]) => a + b)`, or unannotated, `handle('add', ([a, b]) => a + b)`. They are what you
   * expect of the peer, not checked at run time (validate bodies from peers you do not trust).
   */
  handle(method: string, handler: RequestHandler<T, T>): () => void;
  /** See the first signature: a handler typed for one method's body (B) and reply (R). */
  handle<B extends T, R extends T = T>(method: string, handler: RequestHandler<B, R>): () => void;
  handle(method: string, handler: RequestHandler<never, unknown>): () => void {
    return setHandler(this.#handlers, method, handler);
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
    return this.#calls.add<R>(id, method, timeout, signal, () => this.channel[queueFrame](encoded, options, { kind: REQUEST, id, name: method }));
  }

  /**
   * Lets the process exit while this channel is open (see {@link Channel.unref}); timers of
   * pending requests do not hold it either. Returns the channel.
   */
  unref(): this {
    this.channel.unref();
    this.#calls.ref(false);
    return this;
  }

  /** Undoes unref(). Returns the channel. */
  ref(): this {
    this.channel.ref();
    this.#calls.ref(true);
    return this;
  }

  /**
   * Closes in order (see {@link Channel.close}): what was sent before is delivered, then our
   * side ends. Memoised: a second call returns the same promise.
   */
  close(): Promise<void> {
    return this.channel.close();
  }

  /** Ends at once (see {@link Channel.destroy}); pending requests fail. */
  destroy(error?: unknown): void {
    this.channel.destroy(error);
  }

  /**
   * The plain messages from the peer's send(), in order (requests and events are not in it).
   * Before the first loop, and while 'message' has listeners, plain messages go to the listeners
   * (or nowhere); from the first loop on, those with no listener wait to be taken, reading
   * stopping while highWaterMark of them wait. Leaving the loop early closes the channel.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this.iterator();
  }

  /**
   * The plain messages, as `for await (const body of rpc)` gives them, with options:
   * `{ closeOnReturn: false }` leaves the channel open when the loop is left early, and messages
   * not yet read wait for the next loop.
   */
  iterator(options?: ChannelIteratorOptions): AsyncIterableIterator<T> {
    const iterator = this.channel.iterator(options) as unknown as AsyncIterableIterator<T>; // the channel holds the decoded bodies
    this.#iterated = true;
    return iterator;
  }

  /** `await using rpc = ...` closes it in order at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
