/**
 * A Channel's receiving side: frames from the reader become messages (decoded, or parsed together
 * in runs: see JsonRuns) for 'message' listeners or the inbox, or go raw to a frameHook
 * (RpcChannel); and flow control: reading stops (the transport paused, the reader held) while the
 * inbox holds highWaterMark messages, while the replies owed pass sendHighWaterMark bytes, or
 * while busy frames (RpcChannel's pending handlers) reach their limit, and goes on when all are
 * back under half. The peer's end comes after the bytes it sent before it.
 */
import { InterprocessError } from '../errors.js';
import type { ReceivedDescriptor } from '../unix-socket/descriptors.js';
import { type Codec, decodeSpan, jsonCodec } from './codec.js';
import { NO_FDS, kept, release } from './fds.js';
import { FrameReader } from './frame-reader.js';
import type { Inbox } from './inbox.js';
import { JsonRuns, looksWhole } from './json-run.js';
import type { Transport } from './transport.js';

/** See frameHook (symbols.ts). */
export type FrameHook = (buffer: Buffer, start: number, end: number, fds: readonly ReceivedDescriptor[]) => void;

/** What the receiving side asks of its channel. */
export interface ReceiverOwner<T> {
  /** Gives a message to the channel's 'message' listeners; false if it has none. */
  emitMessage(message: T, fds: readonly ReceivedDescriptor[]): boolean;
  /** Whether the channel has 'message' listeners. */
  readonly listening: boolean;
  /** Bytes of replies queued and not yet written. */
  readonly replyBytes: number;
  readonly destroyed: boolean;
  /** Ends the channel with `error`. */
  fail(error: unknown): void;
  /** The peer's end was read, after everything it sent. */
  ended(): void;
}

export interface ReceiverLimits {
  maxMessageSize: number;
  highWaterMark: number;
  sendHighWaterMark: number;
}

export class Receiver<T> {
  readonly #owner: ReceiverOwner<T>;
  readonly #transport: Transport;
  readonly #inbox: Inbox<T>;
  readonly #codec: Codec<T>;
  readonly #json: boolean;
  readonly #highWaterMark: number;
  readonly #sendHighWaterMark: number;
  readonly #reader: FrameReader<ReceivedDescriptor>;
  readonly #runs = new JsonRuns();
  #hook: FrameHook | null = null;
  #hookTransient = false;
  #readEnded = false;
  /** Reading is stopped: the transport is paused and the reader held. */
  #stopped = false;
  #busy = 0;
  #busyLimit = Infinity;
  /** The stream ended while received bytes waited unread: the end is handled after them. */
  #endWaits = false;

  constructor(owner: ReceiverOwner<T>, transport: Transport, inbox: Inbox<T>, codec: Codec<T>, limits: ReceiverLimits) {
    this.#owner = owner;
    this.#transport = transport;
    this.#inbox = inbox;
    this.#codec = codec;
    this.#json = codec === (jsonCodec as Codec<unknown>);
    this.#highWaterMark = limits.highWaterMark;
    this.#sendHighWaterMark = limits.sendHighWaterMark;
    this.#reader = new FrameReader(
      limits.maxMessageSize,
      (buffer, start, end, fds) => this.#onFrame(buffer, start, end, fds),
      (buffer, spans, count) => this.#onRun(buffer, spans, count),
    );
    this.#transientChanged();
  }

  /** See frameHook. */
  get hook(): FrameHook | null {
    return this.#hook;
  }

  set hook(hook: FrameHook | null) {
    this.#hook = hook;
    this.#transientChanged();
  }

  /** See transientFrames. */
  set hookTransient(transient: boolean) {
    this.#hookTransient = transient;
    this.#transientChanged();
  }

  /** Frames need no memory of their own when what reads them only decodes json (see FrameReader#transient). */
  #transientChanged(): void {
    this.#reader.transient = this.#hook === null ? this.#json : this.#hookTransient;
  }

  /** The peer's end has been read. */
  get readEnded(): boolean {
    return this.#readEnded;
  }

  /** The peer's end came and waits behind unread bytes. */
  get endWaits(): boolean {
    return this.#endWaits;
  }

  /** Bytes from the transport. */
  push(chunk: Buffer, fds: ReceivedDescriptor[] | null): void {
    try {
      this.#reader.push(chunk, fds);
    } catch (error) {
      if (fds !== null) release(fds);
      this.#owner.fail(error);
    }
  }

  #onFrame(buffer: Buffer, start: number, end: number, fds: ReceivedDescriptor[] | null): void {
    const hook = this.#hook;
    if (hook !== null) {
      const list = fds ?? NO_FDS;
      try {
        hook(buffer, start, end, list);
      } finally {
        if (list.length > 0 && !kept.has(list)) release(list);
      }
      // What the hook started (RpcChannel: a handler, a reply) counts now: stop before the next frame.
      if (!this.#stopped && (this.#busy >= this.#busyLimit || this.#owner.replyBytes >= this.#sendHighWaterMark)) this.#stop();
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
    this.deliver(message, fds ?? NO_FDS);
  }

  /**
   * Frames that lay whole in one read: json ones are parsed together where they can be. Returns
   * how many it took: it stops where reading stops (see #stop).
   */
  #onRun(buffer: Buffer, spans: readonly number[], count: number): number {
    const together = this.#json && this.#hook === null;
    const reader = this.#reader;
    let i = 0;
    while (i < count) {
      let j = i;
      if (together) {
        // With no 'message' listener the values wait in the inbox: no more at once than it has room for.
        const room = this.#owner.listening ? count : i + this.#highWaterMark - this.#inbox.length + (this.#inbox.waiting ? 1 : 0);
        const limit = Math.min(count, room);
        while (j < limit && looksWhole(buffer, spans[2 * j]!, spans[2 * j + 1]!)) j++;
      }
      const values = j - i >= 2 ? this.#runs.parse(buffer, spans, i, j) : null;
      if (values !== null) {
        for (let k = 0; k < values.length; k++) this.deliver(values[k] as T, NO_FDS);
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

  /** To the 'message' listeners, else to the inbox (reading stops when it is full). */
  deliver(message: T, fds: readonly ReceivedDescriptor[]): void {
    if (this.#owner.emitMessage(message, fds)) return;
    const waiting = this.#inbox.waiting;
    this.#inbox.put(message, fds);
    if (!waiting && this.#inbox.length >= this.#highWaterMark && !this.#stopped) this.#stop();
  }

  /** The transport's end. */
  onEnd(): void {
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
      this.#owner.fail(new InterprocessError('ERR_INTERPROCESS_TRUNCATED', `The peer closed the stream in the middle of a frame${expected >= 0 ? ` (a frame of ${expected} bytes)` : ' (in its header)'}; that message is lost and the channel is closed.`));
      return;
    }
    this.#owner.ended();
  }

  /** See busy (symbols.ts). */
  busy(delta: number): void {
    this.#busy += delta;
    if (delta > 0) {
      if (!this.#stopped && this.#busy >= this.#busyLimit) this.#stop();
    } else if (this.#stopped) this.#go();
  }

  set busyLimit(limit: number) {
    this.#busyLimit = limit;
  }

  /** A reply was queued: stop reading if the replies owed are at their bound. */
  repliesQueued(): void {
    if (!this.#stopped && this.#owner.replyBytes >= this.#sendHighWaterMark) this.#stop();
  }

  /** Something that held reading back went down (a message taken, replies written): read on if all are under half. */
  eased(): void {
    if (this.#stopped) this.#go();
  }

  /** Stops reading from the peer (flow control): the transport pauses, the reader keeps what it has not read. */
  #stop(): void {
    if (this.#owner.destroyed) return;
    this.#stopped = true;
    this.#reader.hold();
    this.#transport.pause();
  }

  /** Reads on if every bound is back under half. */
  #go(): void {
    if (this.#owner.destroyed || !this.#stopped) return;
    if (this.#inbox.length >= this.#highWaterMark / 2 || this.#owner.replyBytes >= this.#sendHighWaterMark / 2 || this.#busy > this.#busyLimit / 2) return;
    this.#stopped = false;
    try {
      this.#reader.resume(); // may stop again
    } catch (error) {
      this.#owner.fail(error);
      return;
    }
    if (this.#stopped || this.#owner.destroyed) return;
    if (this.#endWaits) {
      this.#endWaits = false;
      this.onEnd();
      return;
    }
    this.#transport.resume();
  }

  /** The channel is destroyed: what the reader holds is dropped, descriptors closed. */
  discard(): void {
    const carried = this.#reader.carried;
    if (carried.length > 0) release(carried);
    this.#reader.discard();
  }
}
