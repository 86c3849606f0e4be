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
import { InterprocessError, abortError, invalidArgument, invalidType } from '../errors.js';
import { Channel, type ChannelOptions, type StreamPair } from './channel.js';
import { type Codec, toCodec } from './codec.js';

const MESSAGE = 0;
const REQUEST = 1;
const REPLY = 2;
const FAILURE = 3;
const EVENT = 4;

/** Options of an {@link RpcChannel}. */
export interface RpcOptions<T> extends ChannelOptions<T> {
  /** Default timeout of request(), in milliseconds (default: none). */
  requestTimeout?: number;
}

/** Options of {@link RpcChannel.request}. */
export interface RequestOptions {
  /** Reject with ETIMEDOUT after this many milliseconds (overrides the channel's requestTimeout). */
  timeout?: number;
  /** Reject with ABORT_ERR when aborted; a late reply is then ignored. */
  signal?: AbortSignal;
}

/** Answers requests for one method; what it returns (or resolves to) is the reply. */
export type RequestHandler<T> = (body: T, method: string) => T | Promise<T>;

interface Call {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

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

  constructor(stream: Duplex | StreamPair, options: RpcOptions<T> = {}) {
    super();
    const { codec, requestTimeout, ...channelOptions } = options;
    this.#codec = toCodec(codec, 'json');
    if (requestTimeout !== undefined && !(requestTimeout >= 0)) throw invalidArgument('options.requestTimeout', `must be a non-negative number; got ${String(requestTimeout)}`);
    this.#requestTimeout = requestTimeout;
    this.channel = new Channel<Buffer>(stream, { ...channelOptions, codec: 'raw' });
    this.channel.on('message', (payload: Buffer) => {
      try {
        this.#receive(payload);
      } catch (error) {
        this.channel.destroy(error instanceof InterprocessError ? error : new InterprocessError('ERR_INTERPROCESS_DECODE', `A received frame is malformed: ${(error as Error)?.message}; the channel is closed.`, { cause: error }));
      }
    });
    this.channel.on('error', (error) => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    this.channel.on('close', (error?: InterprocessError) => {
      const failure = error ?? new InterprocessError('ERR_INTERPROCESS_CLOSED', 'The channel closed before the reply came');
      for (const call of [...this.#calls.values()]) call.reject(failure);
      this.emit('close', error);
    });
  }

  #body(value: T | undefined): Uint8Array {
    return value === undefined ? new Uint8Array(0) : this.#codec.encode(value);
  }

  #decode(payload: Buffer): T {
    return (payload.length === 0 ? undefined : this.#codec.decode(payload)) as T;
  }

  #frame(kind: number, id: number | null, name: string | null, body: Uint8Array): Buffer {
    const nameBytes = name === null ? null : Buffer.from(name);
    const head = Buffer.allocUnsafe(1 + (id === null ? 0 : 4) + (nameBytes ? 2 + nameBytes.length : 0));
    let at = head.writeUInt8(kind, 0);
    if (id !== null) at = head.writeUInt32BE(id, at);
    if (nameBytes) {
      at = head.writeUInt16BE(nameBytes.length, at);
      nameBytes.copy(head, at);
    }
    return Buffer.concat([head, body]);
  }

  #receive(payload: Buffer): void {
    if (payload.length < 1) throw new Error('empty frame');
    const kind = payload[0]!;
    const readName = (at: number): [string, number] => {
      const length = payload.readUInt16BE(at);
      if (at + 2 + length > payload.length) throw new Error('name runs past the end of the frame');
      return [payload.toString('utf8', at + 2, at + 2 + length), at + 2 + length];
    };
    switch (kind) {
      case MESSAGE:
        this.emit('message', this.#decode(payload.subarray(1)));
        return;
      case REQUEST: {
        const id = payload.readUInt32BE(1);
        const [method, at] = readName(5);
        void this.#answer(id, method, payload.subarray(at));
        return;
      }
      case REPLY:
      case FAILURE: {
        const id = payload.readUInt32BE(1);
        const call = this.#calls.get(id);
        if (!call) return; // timed out or aborted: a late reply is dropped
        if (kind === REPLY) {
          call.resolve(this.#decode(payload.subarray(5)));
        } else {
          const { code, message } = JSON.parse(payload.toString('utf8', 5)) as { code?: string; message?: string };
          call.reject(new InterprocessError(typeof code === 'string' ? code : 'ERR_INTERPROCESS_REMOTE', `The peer's handler failed: ${message ?? 'no message'}`));
        }
        return;
      }
      case EVENT: {
        const [name, at] = readName(1);
        this.emit('event', name, this.#decode(payload.subarray(at)));
        return;
      }
      default:
        throw new Error(`unknown frame kind ${kind}`);
    }
  }

  async #answer(id: number, method: string, body: Buffer): Promise<void> {
    let frame: Buffer;
    try {
      const handler = this.#handlers.get(method);
      if (!handler) throw new InterprocessError('ERR_INTERPROCESS_NO_HANDLER', `No handler for '${method}' on this side`);
      frame = this.#frame(REPLY, id, null, this.#body(await handler(this.#decode(body), method)));
    } catch (error) {
      const e = error as { code?: unknown; message?: unknown };
      const failure = { code: typeof e?.code === 'string' ? e.code : 'ERR_INTERPROCESS_REMOTE', message: typeof e?.message === 'string' ? e.message : String(error) };
      frame = this.#frame(FAILURE, id, null, Buffer.from(JSON.stringify(failure)));
    }
    await this.channel.send(frame).catch(() => {}); // the channel reports its own failure
  }

  /** Sends a plain message (the peer gets a 'message' event). */
  send(message: T): Promise<void> {
    return this.channel.send(this.#frame(MESSAGE, null, null, this.#body(message)));
  }

  /** Sends an event (the peer gets an 'event' event with this name and body). */
  notify(event: string, body?: T): Promise<void> {
    return this.channel.send(this.#frame(EVENT, null, checkName(event, 'event'), this.#body(body)));
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
  async request<R = T>(method: string, body?: T, options: RequestOptions = {}): Promise<R> {
    checkName(method, 'method');
    const { timeout = this.#requestTimeout, signal } = options;
    if (signal?.aborted) throw abortError(signal);
    const id = this.#nextId;
    this.#nextId = this.#nextId === 0xffffffff ? 1 : this.#nextId + 1;
    const frame = this.#frame(REQUEST, id, method, this.#body(body));
    return new Promise<R>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => finish(abortError(signal!));
      const finish = (error: unknown, value?: unknown) => {
        if (!this.#calls.delete(id)) return; // settled already
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve(value as R);
        else reject(error);
      };
      this.#calls.set(id, { resolve: (value) => finish(undefined, value), reject: (error) => finish(error) });
      if (timeout !== undefined) timer = setTimeout(() => finish(new InterprocessError('ETIMEDOUT', `No reply to '${method}' within ${timeout} ms`)), timeout);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.channel.send(frame).catch((error) => finish(error));
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
