/**
 * A server of RPC channels on a local socket name: every connection becomes an RpcChannel with the
 * server's handlers; events can be broadcast to all of them. One misbehaving client ends its own
 * channel, never the server.
 */
import { EventEmitter } from 'node:events';
import { accessCheck, checkCodecTrust } from '../access.js';
import { InterprocessError, fromSystemError, outOfRange } from '../errors.js';
import { connect, type ConnectOptions } from '../local-socket/connect.js';
import { type ListenOptions, type LocalSocketListener, listen } from '../local-socket/listener.js';
import type { LocalSocketName } from '../local-socket/name.js';
import type { PeerCredentials } from '../credentials.js';
import type { LocalSocket } from '../local-socket/stream.js';
import { type AuthOptions, type AuthSettings, takeAuth } from './auth-options.js';
import { handshake } from './auth.js';
import { type ChannelIteratorOptions, closeOnReturnOf } from './types.js';
import { type Codec, encodeBody, toCodec, v8Codec } from './codec.js';
import { EVENT, type RequestHandler, type RpcOptions, type StoredHandler, checkName, serverHandlers, setHandler } from './rpc-types.js';
import { bufferedUnder, queueFrame } from './symbols.js';
import type { Channel } from './channel.js';
import { RpcChannel } from './rpc.js';

/**
 * Options of {@link serveRpc}: the channel's, the listener's, and the authkey handshake's.
 * `allow` (default 'same-user') decides who may connect before any request is read; the v8 codec
 * needs `trustPeers: true` under a rule that lets in other users.
 */
export interface RpcServerOptions<T> extends RpcOptions<T>, ListenOptions, AuthOptions {
  /**
   * The most bytes a client may have waiting to be written to it (events, replies: what it has
   * not read yet) when a broadcast() has been queued: past this, broadcast() waits for it to
   * catch up (default 8 MiB).
   */
  maxBufferedBytes?: number;
  /**
   * Milliseconds broadcast() waits for a client past maxBufferedBytes to catch up before it
   * closes it as a slow consumer, with ERR_INTERPROCESS_SLOW_CONSUMER (default 10000; `Infinity`
   * never closes one, and a client that never reads then holds broadcast() for good).
   */
  slowClientTimeout?: number;
}

/** Default maxBufferedBytes: 8 MiB waiting for one client. */
const DEFAULT_MAX_BUFFERED = 8 * 1024 * 1024;
/** Default slowClientTimeout: 10 s. */
const DEFAULT_SLOW_CLIENT_TIMEOUT = 10_000;

/** How broadcast() treats a client that falls behind (see RpcServerOptions). */
interface SlowClients {
  maxBufferedBytes: number;
  slowClientTimeout: number;
}
const EMPTY = new Uint8Array(0);

/** The events of an {@link RpcServer}, with their arguments. */
export interface RpcServerEvents<T> {
  /**
   * A new channel, already answering with the server's handlers. With no 'connection' listener it
   * goes to iteration (`for await (const rpc of server)`) instead, held until taken while open.
   */
  connection: [channel: RpcChannel<T>];
  /**
   * The `allow` rule refused a peer (closed before anything of it was read): its credentials (null
   * if they could not be read), and what a predicate threw, if it threw.
   */
  refused: [credentials: PeerCredentials | null, error?: unknown];
  /** With an authkey: a connection failed the handshake and was closed (see {@link authenticate}). */
  authFailure: [error: InterprocessError];
  /** The listener failed, or the error given to destroy() (emitted only when listened for). */
  error: [error: InterprocessError];
  /** The server is closed: the listener and every channel. */
  close: [];
}

/** A loop waiting for the next connection. */
interface Waiter<T> {
  resolve(result: IteratorResult<RpcChannel<T>>): void;
  owner: object;
}

/**
 * Serves RPC channels. Events (see {@link RpcServerEvents}): 'connection' (each new RpcChannel),
 * 'refused', 'error' (the listener's), 'close', and with an authkey 'authFailure'. Async-iterable
 * over its connections when nobody listens for 'connection'.
 */
export class RpcServer<T = unknown> extends EventEmitter<RpcServerEvents<T>> implements AsyncIterable<RpcChannel<T>>, AsyncDisposable {
  /** The local socket listener it serves on. */
  readonly listener: LocalSocketListener;
  readonly #channels = new Set<RpcChannel<T>>();
  readonly #handlers = new Map<string, StoredHandler>();
  /** Ends the handshakes still running when the server closes. */
  readonly #closing = new AbortController();
  #authFailures = 0;
  /** Channels nobody listened for, waiting for a loop (in order; a closed one leaves). */
  readonly #queue = new Set<RpcChannel<T>>();
  #waiter: Waiter<T> | null = null;
  #closed: Promise<void> | null = null;
  #ended = false;
  readonly #codec: Codec<T>;
  readonly #slow: SlowClients;

  /** @internal Use serveRpc(). */
  constructor(listener: LocalSocketListener, options: RpcOptions<T>, auth: AuthSettings | null = null, slow: SlowClients = { maxBufferedBytes: DEFAULT_MAX_BUFFERED, slowClientTimeout: DEFAULT_SLOW_CLIENT_TIMEOUT }) {
    super();
    this.listener = listener;
    this.#codec = toCodec(options.codec, 'json');
    this.#slow = slow;
    listener.on('error', (error: InterprocessError) => this.emit('error', error));
    listener.on('refused', (credentials: PeerCredentials | null, ...error: unknown[]) => {
      if (error.length === 0) this.emit('refused', credentials);
      else this.emit('refused', credentials, error[0]);
    });
    listener.on('connection', (socket: LocalSocket) => {
      socket.on('error', () => {}); // the channel reports stream errors as its own
      if (auth === null) this.#serve(socket, options);
      else this.#authenticate(socket, options, auth);
    });
  }

  #serve(socket: LocalSocket, options: RpcOptions<T>): void {
    if (this.#ended) {
      socket.destroy();
      return;
    }
    const channel = new RpcChannel<T>(socket, options);
    channel[serverHandlers] = this.#handlers;
    this.#channels.add(channel);
    channel.on('close', () => {
      this.#channels.delete(channel);
      this.#queue.delete(channel);
    });
    if (this.listenerCount('connection') > 0) {
      this.emit('connection', channel);
    } else if (this.#waiter !== null) {
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter.resolve({ value: channel, done: false });
    } else {
      this.#queue.add(channel);
    }
  }

  /** The handshake first: no byte of the peer reaches a channel (or a handler) before it succeeds. */
  #authenticate(socket: LocalSocket, options: RpcOptions<T>, auth: AuthSettings): void {
    const signal = this.#closing.signal;
    handshake(socket, auth, 'server', signal).then(
      () => (signal.aborted ? socket.destroy() : this.#serve(socket, options)),
      (error: InterprocessError) => {
        if (signal.aborted) return; // the server closed
        this.#authFailures++;
        this.emit('authFailure', error);
      },
    );
  }

  /** How many connections failed the authkey handshake (and were closed). */
  get authFailures(): number {
    return this.#authFailures;
  }

  /** How many peers the `allow` rule has refused so far (the listener's count). */
  get refused(): number {
    return this.listener.refused;
  }

  /** The open channels. */
  get channels(): ReadonlySet<RpcChannel<T>> {
    return this.#channels;
  }

  /**
   * Answers `method` on every channel, present and future (a channel's own handle() for the same
   * method takes precedence on that channel). Returns a function that removes it. Handler types
   * as {@link RpcChannel.handle}.
   */
  handle(method: string, handler: RequestHandler<T, T>): () => void;
  /** See the first signature: a handler typed for one method's body (B) and reply (R). */
  handle<B extends T, R extends T = T>(method: string, handler: RequestHandler<B, R>): () => void;
  handle(method: string, handler: RequestHandler<never, unknown>): () => void {
    return setHandler(this.#handlers, method, handler);
  }

  /**
   * Sends an event to every open channel, encoded once (a Buffer body is copied once: yours to
   * reuse when this resolves). Resolves with how many channels it was queued on, once every
   * client has at most maxBufferedBytes waiting to be written to it: a burst of broadcasts is
   * paced by the clients that read, and never waits on one that does not. A client still over
   * maxBufferedBytes after slowClientTimeout (it reads too slowly, or not at all) is closed with
   * ERR_INTERPROCESS_SLOW_CONSUMER. Rejects as notify() does for an event name or a body it
   * cannot send, having queued it nowhere.
   */
  async broadcast(event: string, body?: T): Promise<number> {
    checkName(event, 'event');
    let encoded = body === undefined ? EMPTY : encodeBody(this.#codec, body, 'body');
    // The raw codec's frame is the caller's own Buffer: queued uncopied, it could change under us.
    if (typeof encoded !== 'string' && (encoded as unknown) === body) encoded = Uint8Array.prototype.slice.call(encoded);
    const envelope = { kind: EVENT, id: -1, name: event };
    const max = this.#slow.maxBufferedBytes;
    const behind: Channel<Buffer>[] = [];
    let queued = 0;
    for (const rpc of this.#channels) {
      const channel = rpc.channel;
      if (channel.closed) continue;
      try {
        channel[queueFrame](encoded, undefined, envelope);
      } catch (error) {
        // Closing: it no longer takes frames. Too large: so for every channel (the first one
        // throws, before any is queued), the caller's to know.
        if ((error as InterprocessError).code === 'ERR_INTERPROCESS_CLOSED' || channel.closed) continue;
        throw error;
      }
      queued++;
      if (channel.bufferedBytes > max) behind.push(channel);
    }
    await Promise.all(behind.map((channel) => this.#catchUp(channel)));
    return queued;
  }

  /** Waits for `channel` to be back under maxBufferedBytes; closes it if it is not within slowClientTimeout. */
  async #catchUp(channel: Channel<Buffer>): Promise<void> {
    const { maxBufferedBytes, slowClientTimeout } = this.#slow;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), slowClientTimeout)));
    const caughtUp = await Promise.race([channel[bufferedUnder](maxBufferedBytes).then(() => true), late]);
    clearTimeout(timer);
    if (caughtUp || channel.closed) return;
    channel.destroy(
      new InterprocessError(
        'ERR_INTERPROCESS_SLOW_CONSUMER',
        `This client still had ${channel.bufferedBytes} bytes waiting to be written to it ${slowClientTimeout} ms after it passed the server's maxBufferedBytes (${maxBufferedBytes}): it reads too slowly or not at all, and was closed rather than hold more. Read events as they come, or raise maxBufferedBytes or slowClientTimeout.`,
      ),
    );
  }

  /** Lets the process exit while the server listens (the listener's unref(); each channel holds the loop on its own). */
  unref(): this {
    this.listener.unref();
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.listener.ref();
    return this;
  }

  /** No more connections: loops end, handshakes stop. */
  #end(): void {
    this.#ended = true;
    this.#closing.abort();
    if (this.#waiter !== null) {
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter.resolve({ value: undefined, done: true });
    }
  }

  /**
   * Stops accepting and closes every channel in order (see {@link RpcChannel.close}), then emits
   * 'close'. Memoised: a second call returns the same promise.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#end();
      try {
        await this.listener.close();
      } finally {
        await Promise.allSettled([...this.#channels].map((channel) => channel.close()));
        this.emit('close');
      }
    })();
    return this.#closed;
  }

  /**
   * Stops at once: the listener closes, every channel is destroyed (their pending requests fail);
   * then 'error' (with `error`, if given and listened for) and 'close'.
   */
  destroy(error?: unknown): void {
    if (this.#closed !== null) {
      for (const channel of this.#channels) channel.destroy();
      return;
    }
    this.#closed = Promise.resolve();
    this.#end();
    void this.listener.close().catch(() => {});
    for (const channel of this.#channels) channel.destroy();
    if (error !== undefined && this.listenerCount('error') > 0) {
      this.emit('error', error instanceof InterprocessError ? error : fromSystemError(error, 'The server failed'));
    }
    this.emit('close');
  }

  /**
   * The connections (RpcChannel) nobody listened for, in order; ends when the server closes.
   * Leaving the loop early closes the server (see {@link RpcServer.iterator}).
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<RpcChannel<T>> {
    return this.iterator();
  }

  /**
   * The connections, as `for await (const rpc of server)` gives them, with options:
   * `{ closeOnReturn: false }` leaves the server open when the loop is left early, and connections
   * not yet taken wait for the next loop.
   */
  iterator(options?: ChannelIteratorOptions): AsyncIterableIterator<RpcChannel<T>> {
    const closeOnReturn = closeOnReturnOf(options);
    const owner = {};
    let finished = false;
    const iterator: AsyncIterableIterator<RpcChannel<T>> = {
      next: () => {
        const first = finished ? undefined : this.#queue.values().next();
        if (first !== undefined && !first.done) {
          this.#queue.delete(first.value);
          return Promise.resolve({ value: first.value, done: false });
        }
        if (finished || this.#ended) return Promise.resolve({ value: undefined, done: true });
        if (this.#waiter !== null) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'This server is already being iterated; take connections from one loop at a time.'));
        return new Promise((resolve) => (this.#waiter = { resolve, owner }));
      },
      return: async () => {
        finished = true;
        if (closeOnReturn) await this.close();
        else if (this.#waiter?.owner === owner) {
          const waiter = this.#waiter;
          this.#waiter = null;
          waiter.resolve({ value: undefined, done: true });
        }
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** `await using server = ...` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Listens on `name` and serves an RpcChannel per connection. Peers the `allow` rule refuses
 * (default: other users than this one and root) are closed before any request of theirs is
 * read: see `server.listener.refused` and its `'refused'` event. With `authkey`, each connection
 * must then pass the authkey handshake (see authenticate(), as Python's
 * `Listener(address, authkey=...)`); one that fails is closed and reported as 'authFailure'.
 */
export async function serveRpc<T = unknown>(name: string | LocalSocketName, options: RpcServerOptions<T> = {}): Promise<RpcServer<T>> {
  const [auth, rest] = takeAuth(options);
  const { codec, maxMessageSize, highWaterMark, sendHighWaterMark, requestTimeout, maxPendingRequests, trustPeers, maxBufferedBytes = DEFAULT_MAX_BUFFERED, slowClientTimeout = DEFAULT_SLOW_CLIENT_TIMEOUT, ...listenOptions } = rest;
  if (typeof maxBufferedBytes !== 'number' || !(maxBufferedBytes >= 0)) throw outOfRange('options.maxBufferedBytes', 'a number of bytes from 0', maxBufferedBytes);
  if (typeof slowClientTimeout !== 'number' || !(slowClientTimeout >= 0)) throw outOfRange('options.slowClientTimeout', 'a number of milliseconds from 0 (Infinity: never close a slow client)', slowClientTimeout);
  // Refused now rather than on every connection: each channel would refuse it the same way.
  checkCodecTrust(codec === 'v8' || codec === (v8Codec as unknown), accessCheck(listenOptions.allow), trustPeers, 'Cannot serve RPC');
  const listener = await listen(name, listenOptions);
  return new RpcServer<T>(listener, { codec, maxMessageSize, highWaterMark, sendHighWaterMark, requestTimeout, maxPendingRequests, trustPeers } as RpcOptions<T>, auth, { maxBufferedBytes, slowClientTimeout: Math.min(slowClientTimeout, 2 ** 31 - 1) });
}

/**
 * Connects to an RPC server at `name`. With `authkey`, the authkey handshake runs before the
 * channel is made (see authenticate(), as Python's `Client(address, authkey=...)`); it
 * rejects as authenticate() does, with the connection closed.
 */
export async function connectRpc<T = unknown>(name: string | LocalSocketName, options: RpcOptions<T> & ConnectOptions & AuthOptions = {}): Promise<RpcChannel<T>> {
  const [auth, rest] = takeAuth(options);
  const { codec, maxMessageSize, highWaterMark, sendHighWaterMark, requestTimeout, maxPendingRequests, trustPeers, ...connectOptions } = rest;
  const socket = await connect(name, connectOptions);
  if (auth !== null) await handshake(socket, auth, 'client', connectOptions.signal);
  return new RpcChannel<T>(socket, { codec, maxMessageSize, highWaterMark, sendHighWaterMark, requestTimeout, maxPendingRequests, trustPeers } as RpcOptions<T>);
}
