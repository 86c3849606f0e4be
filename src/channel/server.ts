/**
 * A server of RPC channels on a local socket name: every connection becomes an RpcChannel with the
 * server's handlers; events can be broadcast to all of them. One misbehaving client ends its own
 * channel, never the server.
 */
import { EventEmitter } from 'node:events';
import { accessCheck, checkCodecTrust } from '../access.js';
import { connect, type ConnectOptions } from '../local-socket/connect.js';
import { type ListenOptions, type LocalSocketListener, listen } from '../local-socket/listener.js';
import type { LocalSocketName } from '../local-socket/name.js';
import type { LocalSocket } from '../local-socket/stream.js';
import { type AuthOptions, type AuthSettings, handshake, takeAuth } from './auth.js';
import { v8Codec } from './codec.js';
import { type RequestHandler, RpcChannel, type RpcOptions } from './rpc.js';

/**
 * Options of {@link serveRpc}: the channel's, the listener's, and the authkey handshake's.
 * `allow` (default 'same-user') decides who may connect before any request is read; the v8 codec
 * needs `trustPeers: true` under a rule that lets in other users.
 */
export interface RpcServerOptions<T> extends RpcOptions<T>, ListenOptions, AuthOptions {}

/**
 * Serves RPC channels. Events: 'channel' (each new RpcChannel), 'error' (the listener's), and
 * with an authkey 'authFailure' (the error of a connection that failed the handshake and was
 * closed; see {@link authenticate}).
 */
export class RpcServer<T = unknown> extends EventEmitter implements AsyncDisposable {
  /** The local socket listener it serves on. */
  readonly listener: LocalSocketListener;
  readonly #channels = new Set<RpcChannel<T>>();
  readonly #handlers = new Map<string, RequestHandler<T>>();
  /** Ends the handshakes still running when the server closes. */
  readonly #closing = new AbortController();
  #authFailures = 0;

  /** @internal Use serveRpc(). */
  constructor(listener: LocalSocketListener, options: RpcOptions<T>, auth: AuthSettings | null = null) {
    super();
    this.listener = listener;
    listener.on('error', (error) => this.emit('error', error));
    listener.on('connection', (socket) => {
      socket.on('error', () => {}); // the channel reports stream errors as its own
      if (auth === null) this.#serve(socket, options);
      else this.#authenticate(socket, options, auth);
    });
  }

  #serve(socket: LocalSocket, options: RpcOptions<T>): void {
    const channel = new RpcChannel<T>(socket, options);
    for (const [method, handler] of this.#handlers) channel.handle(method, handler);
    this.#channels.add(channel);
    channel.on('close', () => this.#channels.delete(channel));
    this.emit('channel', channel);
  }

  /** The handshake first: no byte of the peer reaches a channel (or a handler) before it succeeds. */
  #authenticate(socket: LocalSocket, options: RpcOptions<T>, auth: AuthSettings): void {
    const signal = this.#closing.signal;
    handshake(socket, auth, 'server', signal).then(
      () => (signal.aborted ? socket.destroy() : this.#serve(socket, options)),
      (error) => {
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

  /** The open channels. */
  get channels(): ReadonlySet<RpcChannel<T>> {
    return this.#channels;
  }

  /** Answers `method` on every channel, present and future. */
  handle(method: string, handler: RequestHandler<T>): void {
    this.#handlers.set(method, handler);
    for (const channel of this.#channels) channel.handle(method, handler);
  }

  /** Sends an event to every open channel; resolves with how many it reached. */
  async broadcast(event: string, body?: T): Promise<number> {
    const results = await Promise.allSettled([...this.#channels].map((channel) => channel.notify(event, body)));
    return results.filter((r) => r.status === 'fulfilled').length;
  }

  /** Stops accepting and closes every channel in order. */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.listener.close();
    await Promise.allSettled([...this.#channels].map((channel) => channel.close()));
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
  const { codec, maxFrameSize, highWaterMark, sendHighWaterMark, requestTimeout, maxPendingRequests, trustPeers, ...listenOptions } = rest;
  // Refused now rather than on every connection: each channel would refuse it the same way.
  checkCodecTrust(codec === 'v8' || codec === (v8Codec as unknown), accessCheck(listenOptions.allow), trustPeers, 'Cannot serve RPC');
  const listener = await listen(name, listenOptions);
  return new RpcServer<T>(listener, { codec, maxFrameSize, highWaterMark, sendHighWaterMark, requestTimeout, maxPendingRequests, trustPeers } as RpcOptions<T>, auth);
}

/**
 * Connects to an RPC server at `name`. With `authkey`, the authkey handshake runs before the
 * channel is made (see authenticate(), as Python's `Client(address, authkey=...)`); it
 * rejects as authenticate() does, with the connection closed.
 */
export async function connectRpc<T = unknown>(name: string | LocalSocketName, options: RpcOptions<T> & ConnectOptions & AuthOptions = {}): Promise<RpcChannel<T>> {
  const [auth, rest] = takeAuth(options);
  const { codec, maxFrameSize, highWaterMark, sendHighWaterMark, requestTimeout, maxPendingRequests, trustPeers, ...connectOptions } = rest;
  const socket = await connect(name, connectOptions);
  if (auth !== null) await handshake(socket, auth, 'client', connectOptions.signal);
  return new RpcChannel<T>(socket, { codec, maxFrameSize, highWaterMark, sendHighWaterMark, requestTimeout, maxPendingRequests, trustPeers } as RpcOptions<T>);
}
