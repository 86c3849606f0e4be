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
 * The parts: the transports (transport.ts, unix-transport.ts), the sending side (send-queue.ts),
 * the receiving side and flow control (receiver.ts, with the batched json parse in json-run.ts),
 * the messages waiting for iteration (inbox.ts), which descriptors are closed when (fds.ts), the
 * frames themselves (frame.ts). This file holds the public class and its life: open, closing,
 * closed.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { acceptedRule, checkCodecTrust } from '../access.js';
import { InterprocessError, fromSystemError, outOfRange } from '../errors.js';
import type { ReceivedDescriptor } from '../unix-socket/descriptors.js';
import type { UnixSocket } from '../unix-socket/socket.js';
import { type Codec, encodeBody, toCodec, v8Codec } from './codec.js';
import { kept, release } from './fds.js';
import { type Envelope, frameTooLarge } from './frame.js';
import { Reservation } from './reservation.js';
import { Inbox } from './inbox.js';
import { type FrameHook, Receiver } from './receiver.js';
import { type Outcome, SendQueue } from './send-queue.js';
import { bufferedUnder, busy, busyLimit, deliver, frameHook, queueFrame, sendFrame, transientFrames } from './symbols.js';
import type { Transport } from './transport.js';
import { type ChannelEvents, type ChannelIteratorOptions, type ChannelMessage, type ChannelOptions, type ChannelSendOptions, type StreamPair, limitsOf } from './types.js';
import { transportOf } from './unix-transport.js';

function closedError(): InterprocessError {
  return new InterprocessError('ERR_INTERPROCESS_CLOSED', 'The channel is closed');
}

/**
 * Sends and receives whole messages over a byte stream. Events (see {@link ChannelEvents}):
 * 'message' (message, and fds when descriptors came with it), 'error', 'end', 'close'. Messages go
 * to 'message' listeners if there are any, otherwise to iteration (`for await (const message of
 * channel)`), held until taken.
 *
 * On a Unix stream socket of interprocess (connectUnix, listenUnix, unixSocketPair,
 * unixSocketFromFd) a message can carry descriptors: `send(message, { fds })`. They arrive as
 * ReceivedDescriptor objects with their message: the second argument of 'message' listeners
 * (present only when the message has some), or
 * `fds` in {@link Channel.withFds}. Take or convert them there; those left are closed once the
 * listeners return, or when the iteration moves on.
 */
export class Channel<T = unknown> extends EventEmitter<ChannelEvents<T>> implements AsyncIterable<T>, AsyncDisposable {
  readonly #transport: Transport;
  readonly #codec: Codec<T>;
  readonly #sending: SendQueue;
  readonly #maxMessageSize: number;
  readonly #inbox: Inbox<T>;
  readonly #receiving: Receiver<T>;
  #writeEnded = false;
  #closing: Promise<void> | null = null;
  #error: InterprocessError | null = null;
  #destroyed = false;

  constructor(stream: Duplex | StreamPair | UnixSocket, options: ChannelOptions<T> = {}) {
    super();
    const limits = limitsOf(options);
    const { maxMessageSize } = limits;
    this.#maxMessageSize = maxMessageSize;
    this.#codec = toCodec(options.codec, 'json');
    checkCodecTrust(this.#codec === (v8Codec as Codec<unknown>), acceptedRule(stream), options.trustPeers, 'Cannot make the channel');
    // The transport's events come later (never during its construction): the parts are made next.
    this.#transport = transportOf(stream, {
      data: (chunk, fds) => this.#receiving.push(chunk, fds),
      end: () => this.#receiving.onEnd(),
      error: (error) => this.destroy(fromSystemError(error, "The channel's stream failed", 'The peer may have gone away.')),
      gone: () => this.#maybeClosed(),
      drain: () => this.#sending.flush(),
    }, options);
    const channel = this;
    this.#sending = new SendQueue(this.#transport, maxMessageSize, {
      get error() {
        return channel.#error;
      },
      repliesWritten: () => this.#receiving.eased(),
    });
    this.#inbox = new Inbox<T>({
      get error() {
        return channel.#error;
      },
      get ended() {
        return channel.#receiving.readEnded || channel.#destroyed;
      },
      taken: () => this.#receiving.eased(),
      close: () => this.close(),
    });
    this.#receiving = new Receiver<T>(
      {
        emitMessage: (message, fds) => this.#emitMessage(message, fds),
        get listening() {
          return channel.listenerCount('message') > 0;
        },
        get replyBytes() {
          return channel.#sending.replyBytes;
        },
        get destroyed() {
          return channel.#destroyed;
        },
        fail: (error) => this.destroy(error),
        ended: () => {
          this.#inbox.wake();
          this.emit('end');
          // The peer is done sending: finish ours (everything queued first), then the channel closes.
          void this.close().catch(() => {});
        },
      },
      this.#transport,
      this.#inbox,
      this.#codec,
      limits,
    );
  }

  /** To the 'message' listeners, if there are any; the descriptors they did not keep are closed after. */
  #emitMessage(message: T, fds: readonly ReceivedDescriptor[]): boolean {
    if (this.listenerCount('message') === 0) return false;
    try {
      if (fds.length === 0) this.emit('message', message);
      else this.emit('message', message, fds);
    } finally {
      if (fds.length > 0 && !kept.has(fds)) release(fds);
    }
    return true;
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
   * Bytes sent (messages, and RpcChannel's requests, replies and events) and not yet handed to
   * the OS: what a peer that reads slowly, or not at all, makes this side hold. Await send() to
   * be paced by the peer, or watch this when sending to many (RpcServer.broadcast() closes a
   * client past its maxBufferedBytes).
   */
  get bufferedBytes(): number {
    return this.#sending.bufferedBytes;
  }

  /** Whether this channel's stream can carry descriptors (a Unix stream socket of interprocess). */
  get passesFds(): boolean {
    return this.#transport.passesFds;
  }

  /**
   * Sends one message, with descriptors if `options.fds` has any. Resolves when it has been
   * handed to the OS; waits first while the stream is full (so awaiting each send paces a sender
   * to its peer). Sends of one tick leave together. Rejects with
   * ERR_INTERPROCESS_FRAME_TOO_LARGE (over maxMessageSize; the channel stays usable), the codec's
   * error, ERR_INTERPROCESS_NO_DESCRIPTORS (descriptors on a stream that cannot carry them),
   * ABORT_ERR (`options.signal`: see {@link ChannelSendOptions.signal}), or
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

  /**
   * Reserves room for one message of up to `size` bytes, to fill in place and then commit() (or
   * cancel()): see {@link Reservation}. It takes its place in the order now: what was sent before
   * goes first, and what is sent after waits until it is committed or cancelled. Resolves once
   * the messages before it have gone and, on the shared-memory transport, the peer's ring has
   * `size` free bytes in one piece: `data` is then that part of the ring, and filling it is the
   * message's only copy. Elsewhere (another transport, or a message larger than half the ring),
   * `data` is a Buffer, sent at commit(). Rejects with ERR_OUT_OF_RANGE,
   * ERR_INTERPROCESS_FRAME_TOO_LARGE (over maxMessageSize) or ERR_INTERPROCESS_CLOSED.
   */
  reserve(size: number): Promise<Reservation> {
    if (this.#closing || this.#destroyed) return Promise.reject(this.#error ?? closedError());
    if (!Number.isInteger(size) || size < 0) return Promise.reject(outOfRange('size', 'an integer number of bytes from 0', size));
    if (size > this.#maxMessageSize) return Promise.reject(frameTooLarge(size, this.#maxMessageSize, 'send'));
    return new Promise<Reservation>((resolve, reject) => {
      const sending = this.#sending;
      const settle = sending.reserve(size, (data) => {
        resolve(new Reservation(data, { commit: (bytes, length) => (sending.commit(bytes, length) ? settle.promise : null), cancel: (bytes) => sending.cancel(bytes) }));
      });
      // Failed before it was granted (the channel ended): reserve() rejects; after, commit() does.
      settle.promise.catch(reject);
    });
  }

  /** @internal See bufferedUnder. */
  [bufferedUnder](bytes: number): Promise<void> {
    return this.#sending.under(bytes);
  }

  /** @internal Sends one frame: `envelope` then `body` (text is sent as UTF-8). */
  [sendFrame](body: string | Uint8Array, options: ChannelSendOptions | undefined, envelope: Envelope | undefined): Promise<void> {
    if (this.#closing || this.#destroyed) return Promise.reject(this.#error ?? closedError());
    return this.#sending.send(body, options, envelope);
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
    // A reply counts against sendHighWaterMark until written.
    if (this.#closing || this.#destroyed) throw this.#error ?? closedError();
    this.#sending.addReply(body, envelope!);
    this.#receiving.repliesQueued();
  }

  #add(body: string | Uint8Array, options: ChannelSendOptions | undefined, envelope: Envelope | undefined): Outcome {
    if (this.#closing || this.#destroyed) throw this.#error ?? closedError();
    return this.#sending.add(body, options, envelope);
  }

  /**
   * Lets the process exit while this channel is open (its stream's unref(), where the stream has
   * one: sockets and pipe ends of ours, net.Socket; another Duplex holds nothing of its own).
   * Returns the channel.
   */
  unref(): this {
    this.#transport.ref(false);
    return this;
  }

  /** Undoes unref(): the open channel holds the event loop again. Returns the channel. */
  ref(): this {
    this.#transport.ref(true);
    return this;
  }

  /** @internal See busy. */
  [busy](delta: number): void {
    this.#receiving.busy(delta);
  }

  /** @internal See busy. */
  set [busyLimit](limit: number) {
    this.#receiving.busyLimit = limit;
  }

  /** @internal See frameHook. */
  get [frameHook](): FrameHook | null {
    return this.#receiving.hook;
  }

  /** @internal See frameHook. */
  set [frameHook](hook: FrameHook | null) {
    this.#receiving.hook = hook;
  }

  /** @internal See transientFrames. */
  set [transientFrames](transient: boolean) {
    this.#receiving.hookTransient = transient;
  }

  /**
   * @internal Delivers a message decoded by a frameHook (RpcChannel's plain messages) as the
   * channel delivers its own: to 'message' listeners of the channel, else to iteration (held until
   * taken, reading stopping at highWaterMark).
   */
  [deliver](message: unknown, fds: readonly ReceivedDescriptor[]): void {
    this.#receiving.deliver(message as T, fds);
  }

  /**
   * Closes in order: everything sent before close() is delivered, then our side ends; messages
   * the peer sent before its own end still arrive. Resolves when our side is done. Memoised: a
   * second call returns the same promise.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    if (this.#destroyed) return (this.#closing = this.#error ? Promise.reject(this.#error) : Promise.resolve());
    this.#closing = (async () => {
      // A reservation not committed is not sent: cancelled, so that it cannot hold the close.
      this.#sending.dropReservations(new InterprocessError('ERR_INTERPROCESS_CLOSED', 'The channel was closed before this reservation was granted: nothing of it was sent'));
      const settled = this.#sending.settled();
      if (settled !== null) await settled;
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
    const readEnded = this.#receiving.readEnded;
    if ((readEnded || gone) && this.#writeEnded) this.destroy();
    else if (gone && !readEnded && !this.#receiving.endWaits) this.destroy(closedError());
  }

  /**
   * Ends the channel at once: sends not yet written fail (ERR_INTERPROCESS_CLOSED, or `error`), the
   * streams are destroyed; then 'error' (with `error`, if given and listened for) and 'close'.
   */
  destroy(error?: unknown): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (error !== undefined) this.#error = error instanceof InterprocessError ? error : fromSystemError(error, 'The channel failed');
    this.#sending.fail(this.#error ?? closedError());
    this.#receiving.discard();
    this.#transport.destroy();
    this.#inbox.wake();
    if (this.#error && this.listenerCount('error') > 0) this.emit('error', this.#error);
    this.emit('close', this.#error ?? undefined);
  }

  /**
   * Received messages in order; ends when the peer ends, throws the channel's error. Leaving the
   * loop early closes the channel (see {@link Channel.iterator} to keep it open).
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this.#inbox.messages(undefined);
  }

  /**
   * The messages as `for await (const message of channel)` gives them, with options:
   * `{ closeOnReturn: false }` leaves the channel open when the loop is left early, and the
   * messages it did not read wait for the next loop. Descriptors that came with a message are
   * closed (see {@link Channel.withFds} to take them).
   */
  iterator(options?: ChannelIteratorOptions): AsyncIterableIterator<T> {
    return this.#inbox.messages(options);
  }

  /**
   * Received messages with their descriptors: `for await (const { message, fds } of
   * channel.withFds())`. Descriptors not taken or converted (see ReceivedDescriptor) are closed
   * when the loop asks for the next message or ends. Leaving the loop early closes the channel
   * unless `closeOnReturn` is false (see {@link Channel.iterator}).
   */
  withFds(options?: ChannelIteratorOptions): AsyncIterableIterator<ChannelMessage<T>> {
    return this.#inbox.iterator(options, (item) => item);
  }

  /** `await using channel = ...` closes it in order at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
