/** The public types of a Channel: its options, events and received messages. */
import type { Readable, Writable } from 'node:stream';
import { type InterprocessError, invalidArgument, invalidType } from '../errors.js';
import type { ReceivedDescriptor, Sendable } from '../unix-socket/descriptors.js';
import type { Codec, CodecName } from './codec.js';
import { DEFAULT_MAX_MESSAGE_SIZE, MAX_FRAME_LIMIT } from './frame.js';

/** Default sendHighWaterMark: 1 MiB of unwritten replies. */
const DEFAULT_SEND_HIGH_WATER = 1024 * 1024;

/** Options of a {@link Channel} (and, with RpcOptions, of an {@link RpcChannel}). */
export interface ChannelOptions<T> {
  /** How messages become bytes: 'json' (default), 'raw' (Buffers), 'v8' (structured clone), or your own. */
  codec?: CodecName | Codec<T>;
  /**
   * Largest message received or sent, in bytes: a frame's payload, the codec's encoding of the
   * message (with RpcChannel's few bytes of envelope). Default 16 MiB (the package's
   * DEFAULT_MAX_MESSAGE_SIZE), at most 2 GiB - 1.
   */
  maxMessageSize?: number;
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
  /**
   * How the messages travel: `'stream'` (default) as frames on the stream, or `'shared-memory'`
   * through rings in memory shared with the peer, set up over the stream, which must then be a
   * Unix stream socket of interprocess, with the peer using this option too (docs/shared-memory.md).
   */
  transport?: 'stream' | 'shared-memory';
  /** With `transport: 'shared-memory'`: the bytes of the ring this side reads from (a power of two, 4 KiB to 1 GiB; default 4 MiB). */
  ringSize?: number;
  /**
   * With `transport: 'shared-memory'`: microseconds this side spins on the ring, watching for the
   * peer's next message, before it sleeps on its doorbell (0 to 1000; default 0, never). For
   * latency: a reply that comes within the spin costs no wakeup. It holds this thread's event loop
   * (and a CPU) for at most that long each time the channel falls idle; an idle channel then costs
   * nothing (docs/shared-memory.md).
   */
  spin?: number;
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
  /**
   * Stops waiting: the promise rejects with ABORT_ERR when the signal aborts. A signal already
   * aborted sends nothing. Aborted later, the message was already accepted (framed, queued in
   * order): it is still sent whole, never torn, unless the channel is destroyed first; only the
   * wait ends. The channel stays usable.
   */
  signal?: AbortSignal;
}

/** Options of {@link Channel.iterator} and {@link Channel.withFds}. */
export interface ChannelIteratorOptions {
  /**
   * Whether leaving the loop early (break, return, throw) closes the channel (graceful close(),
   * Node's rule for streams; default true). With false the channel stays open and messages not
   * yet read wait for the next loop, receive or listener.
   */
  closeOnReturn?: boolean;
}

/** The events of a {@link Channel}, with their arguments. */
export interface ChannelEvents<T> {
  /**
   * A message arrived; `fds` (present only when descriptors came with it) are closed when the
   * listeners return, unless taken or converted. With no 'message' listener messages wait for
   * iteration instead.
   */
  message: [message: T, fds?: readonly ReceivedDescriptor[]];
  /**
   * What ended the channel (a malformed or oversized frame, a truncated one, a stream error).
   * Emitted only when there are 'error' listeners: without one the error surfaces from send(),
   * iteration, close() and 'close', never as an uncaught exception.
   */
  error: [error: InterprocessError];
  /** The peer finished sending (its end was read; the messages before it were delivered or queued). */
  end: [];
  /** The channel is closed: with the error that ended it, if one did. */
  close: [error?: InterprocessError];
}

/** A received message with the descriptors that came with it (see {@link Channel.withFds}). */
export interface ChannelMessage<T> {
  /** The message. */
  message: T;
  /** The descriptors sent with it (empty when none): take or convert them before the next message. */
  fds: readonly ReceivedDescriptor[];
}

/** @internal The closeOnReturn option of an iterator() (default true), checked. */
export function closeOnReturnOf(options: ChannelIteratorOptions | undefined): boolean {
  if (options === undefined) return true;
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { closeOnReturn = true } = options;
  if (typeof closeOnReturn !== 'boolean') throw invalidType('options.closeOnReturn', 'a boolean', closeOnReturn);
  return closeOnReturn;
}

/** @internal A channel's bounds, from its options (checked), with their defaults. */
export function limitsOf(options: ChannelOptions<unknown>): { maxMessageSize: number; highWaterMark: number; sendHighWaterMark: number } {
  const { maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE, highWaterMark = 64, sendHighWaterMark = DEFAULT_SEND_HIGH_WATER } = options;
  if (!Number.isInteger(maxMessageSize) || maxMessageSize < 0 || maxMessageSize > MAX_FRAME_LIMIT) {
    throw invalidArgument('options.maxMessageSize', `must be an integer from 0 to ${MAX_FRAME_LIMIT}; got ${String(maxMessageSize)}`);
  }
  if (!Number.isInteger(highWaterMark) || highWaterMark < 1) throw invalidArgument('options.highWaterMark', `must be a positive integer; got ${String(highWaterMark)}`);
  if (!Number.isInteger(sendHighWaterMark) || sendHighWaterMark < 1) throw invalidArgument('options.sendHighWaterMark', `must be a positive integer (bytes); got ${String(sendHighWaterMark)}`);
  return { maxMessageSize, highWaterMark, sendHighWaterMark };
}
