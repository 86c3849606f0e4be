/** The public types of RpcChannel (options, handlers, events) and what RpcServer shares with it. */
import { type InterprocessError, invalidArgument, invalidType } from '../errors.js';
import type { ReceivedDescriptor } from '../unix-socket/descriptors.js';
import type { ChannelOptions, ChannelSendOptions } from './types.js';

/** @internal Frame kinds (see rpc.ts). */
export const MESSAGE = 0;
/** @internal */
export const REQUEST = 1;
/** @internal */
export const REPLY = 2;
/** @internal */
export const FAILURE = 3;
/** @internal */
export const EVENT = 4;

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
 * Answers requests for one method: `body` is the request's body (B), what it returns (or
 * resolves to) is the reply (R). `fds` are the descriptors sent with the request (on a Unix
 * stream socket): take or convert them before the returned promise settles, the rest are closed
 * then.
 */
export type RequestHandler<B = unknown, R = B> = (body: B, method: string, fds: readonly ReceivedDescriptor[]) => R | Promise<R>;

/** The events of an {@link RpcChannel}, with their arguments. */
export interface RpcChannelEvents<T> {
  /**
   * A plain message from the peer's send(); `fds` present only when descriptors came with it
   * (closed when the listeners return unless taken). With no 'message' listener, plain messages
   * go to iteration once a loop over the channel has begun, and are dropped before that.
   */
  message: [body: T, fds?: readonly ReceivedDescriptor[]];
  /** An event from the peer's notify(): its name, body (undefined when it sent none) and descriptors. */
  event: [name: string, body: T | undefined, fds?: readonly ReceivedDescriptor[]];
  /** What ended the channel; emitted only when listened for (see {@link ChannelEvents}). */
  error: [error: InterprocessError];
  /** The peer finished sending. */
  end: [];
  /** The channel is closed (pending requests have failed): with the error that ended it, if one did. */
  close: [error?: InterprocessError];
}

/** @internal Handlers stored without their per-method types (see RpcChannel.handle). */
export type StoredHandler = (body: unknown, method: string, fds: readonly ReceivedDescriptor[]) => unknown;

/** @internal RpcServer's handlers, which an RpcChannel it serves consults after its own. */
export const serverHandlers: unique symbol = Symbol('interprocess.serverHandlers');

/** @internal Checks a method or event name. */
export function checkName(value: unknown, argument: string): string {
  if (typeof value !== 'string') throw invalidType(argument, 'a string', value);
  if (Buffer.byteLength(value) > 0xffff) throw invalidArgument(argument, 'must be at most 65535 bytes of UTF-8');
  return value;
}

/**
 * @internal Sets `handler` for `method` in `handlers` (a channel's or a server's); returns the
 * remover, which removes it only if it is still the one set.
 */
export function setHandler(handlers: Map<string, StoredHandler>, method: string, handler: unknown): () => void {
  checkName(method, 'method');
  if (typeof handler !== 'function') throw invalidType('handler', 'a function', handler);
  const stored = handler as StoredHandler;
  handlers.set(method, stored);
  return () => {
    if (handlers.get(method) === stored) handlers.delete(method);
  };
}
