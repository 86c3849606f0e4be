/**
 * A Channel's sending side: everything sent in one tick is framed into one batch (small frames
 * into one shared buffer, text straight from the string) and written at once, and every send of
 * that batch gets the same outcome. A message with descriptors is a batch of its own: one sendmsg
 * carries its whole frame and, as ancillary data, its descriptors. Batches wait here while the
 * transport is full.
 */
import { InterprocessError, abortError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { type Sendable, toDescriptor } from '../unix-socket/descriptors.js';
import { giveBack } from './buffers.js';
import { FrameWriter } from './frame-writer.js';
import { type Envelope, HEADER_BYTES } from './frame.js';
import type { Transport } from './transport.js';
import type { ChannelSendOptions } from './types.js';

// A batch leaves as soon as it holds this much, without waiting for the end of the tick.
const BATCH_BYTES = 64 * 1024;

/**
 * How a batch ends, and a promise of it made only when a send() asks for one: requests and
 * replies of RpcChannel (queueFrame) need none, and a failure nobody asked about is the channel's,
 * reported there, never an unhandled rejection.
 */
export class Outcome {
  #promise: Promise<void> | null = null;
  #resolve: (() => void) | null = null;
  #reject: ((error: unknown) => void) | null = null;
  /** 0 pending, 1 done, 2 failed. */
  #state = 0;
  #error: unknown = undefined;

  get promise(): Promise<void> {
    if (this.#promise === null) {
      if (this.#state === 1) this.#promise = Promise.resolve();
      else if (this.#state === 2) this.#promise = Promise.reject(this.#error);
      else {
        this.#promise = new Promise<void>((resolve, reject) => {
          this.#resolve = resolve;
          this.#reject = reject;
        });
      }
    }
    return this.#promise;
  }

  resolve(): void {
    if (this.#state !== 0) return;
    this.#state = 1;
    this.#resolve?.();
  }

  reject(error: unknown): void {
    if (this.#state !== 0) return;
    this.#state = 2;
    this.#error = error;
    this.#reject?.(error);
  }
}

/** `promise`, or ABORT_ERR as soon as `signal` aborts, whichever comes first. */
function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** A batch of whole frames, written with one call (a frame with descriptors is alone in its batch). */
interface Batch {
  /** All its bytes (FrameWriter#bytes: text counted a byte a character until encoded). */
  bytes: number;
  chunks: Uint8Array[];
  /** Lent buffers behind its chunks, given back once written (see buffers.ts). */
  loans: Buffer[] | null;
  fds: Int32Array | null;
  settle: Outcome;
  /** Bytes of replies in it (see ChannelOptions.sendHighWaterMark). */
  replyBytes: number;
  /** A reserved message (see reserve()) instead of chunks. */
  reservation?: Reserved;
}

/** A message reserved in the queue, filled in place (see SendQueue#reserve). */
interface Reserved {
  /** Payload bytes asked for. */
  size: number;
  /** Gets the payload's memory once the reservation is at the head of the queue. */
  grant(data: Uint8Array): void;
  /** Whether the transport writes it in place (it then settles it, also when destroyed). */
  inPlace: boolean;
  /** The transport's view, frame header first, once granted in place. */
  view: Uint8Array | null;
  data: Uint8Array | null;
}

/** What the send queue asks of its channel. */
export interface SendQueueOwner {
  /** The error that ended the channel, which a failed write reports instead of its own. */
  readonly error: InterprocessError | null;
  /** Bytes of replies were written (the channel may read on). */
  repliesWritten(): void;
}

export class SendQueue {
  readonly #transport: Transport;
  readonly #owner: SendQueueOwner;
  readonly #max: number;
  readonly #writer: FrameWriter;
  /** The batch this tick's sends join (its frames are in #writer). */
  #open: Outcome | null = null;
  #flushQueued = false;
  readonly #batches: Batch[] = [];
  #unsettled = 0;
  #flushed: (() => void) | null = null;
  #failed = false;
  /** Bytes of replies queued, not yet written (in batches, and in the batch being filled: #openReplyBytes). */
  #replyBytes = 0;
  #openReplyBytes = 0;
  /** Bytes of the batches queued and not yet written (the batch being filled is in #writer). */
  #batchBytes = 0;
  /** A reservation granted and not yet committed or cancelled: nothing after it is written. */
  #holding: Batch | null = null;
  /** Who waits for bufferedBytes to fall to a limit (see under()). */
  #underWaiters: Array<{ limit: number; resolve: () => void }> = [];

  constructor(transport: Transport, max: number, owner: SendQueueOwner) {
    this.#transport = transport;
    this.#writer = new FrameWriter(transport.writesCopied === true);
    this.#max = max;
    this.#owner = owner;
  }

  /** Bytes of replies queued and not yet written. */
  get replyBytes(): number {
    return this.#replyBytes;
  }

  /** Bytes of every frame queued and not yet written (see Channel#bufferedBytes). */
  get bufferedBytes(): number {
    return this.#batchBytes + this.#writer.bytes;
  }

  /** Resolves once bufferedBytes is at most `limit`, or the queue has failed. */
  under(limit: number): Promise<void> {
    if (this.#failed || this.bufferedBytes <= limit) return Promise.resolve();
    return new Promise<void>((resolve) => this.#underWaiters.push({ limit, resolve }));
  }

  #wakeUnder(): void {
    const bytes = this.bufferedBytes;
    this.#underWaiters = this.#underWaiters.filter((waiter) => {
      if (!this.#failed && bytes > waiter.limit) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Resolves once every batch queued so far has been written (or failed); null if none waits. */
  settled(): Promise<void> | null {
    if (this.#unsettled === 0) return null;
    return new Promise<void>((resolve) => (this.#flushed = resolve));
  }

  /**
   * send()'s promise of one frame (see add()): ABORT_ERR at once if `options.signal` has aborted
   * (nothing is sent) or when it aborts (the frame, already queued, is still sent whole).
   */
  send(body: string | Uint8Array, options: ChannelSendOptions | undefined, envelope: Envelope | undefined): Promise<void> {
    const signal = options?.signal;
    let settle: Outcome;
    try {
      if (signal !== undefined) {
        if (typeof signal?.addEventListener !== 'function') throw invalidType('options.signal', 'an AbortSignal', signal);
        if (signal.aborted) throw abortError(signal);
      }
      settle = this.add(body, options, envelope);
    } catch (error) {
      return Promise.reject(error);
    }
    return signal === undefined ? settle.promise : untilAborted(settle.promise, signal);
  }

  /**
   * Frames one message (`envelope` then `body`; text is sent as UTF-8) into this tick's batch,
   * or alone in a batch with its descriptors. Throws what send() rejects with at once.
   */
  add(body: string | Uint8Array, options: ChannelSendOptions | undefined, envelope: Envelope | undefined, replyBytes = 0): Outcome {
    const fds = options?.fds === undefined ? null : this.#descriptors(options.fds);
    if (fds !== null) {
      // Alone in its batch: the frames before it leave first, in order.
      this.#seal();
      this.#writer.add(body, this.#max, envelope);
      const settle = new Outcome();
      this.#queue({ bytes: this.#writer.bytes, chunks: this.#writer.take(), loans: this.#writer.takeLoans(), fds, settle, replyBytes });
      return settle;
    }
    this.#writer.add(body, this.#max, envelope);
    this.#openReplyBytes += replyBytes;
    let open = this.#open;
    if (open === null) {
      open = this.#open = new Outcome();
      this.#unsettled++;
      this.#scheduleFlush();
    }
    if (this.#writer.bytes >= BATCH_BYTES) {
      // A full batch leaves now: the peer starts on it while we frame the next, and its sends
      // resolve without waiting for the rest of the tick's.
      this.#seal();
      this.flush();
    }
    return open;
  }

  /**
   * A reply (RpcChannel's answer to a request): its bytes (text counted a byte a character, as
   * FrameWriter#bytes does) count in replyBytes until written, in the batch that holds it.
   */
  addReply(body: string | Uint8Array, envelope: Envelope): void {
    const bytes = HEADER_BYTES + 5 + (typeof body === 'string' ? body.length : body.byteLength);
    this.add(body, undefined, envelope, bytes);
    this.#replyBytes += bytes;
  }

  #descriptors(fds: Iterable<Sendable>): Int32Array | null {
    if (fds === null || typeof (fds as Iterable<unknown>)[Symbol.iterator] !== 'function') throw invalidType('options.fds', 'an array of descriptors', fds);
    const list = Array.from(fds, (value, i) => toDescriptor(value, `options.fds[${i}]`));
    if (list.length === 0) return null;
    if (!this.#transport.passesFds) {
      throw new InterprocessError(
        'ERR_INTERPROCESS_NO_DESCRIPTORS',
        "This channel's stream cannot carry descriptors: only a Unix stream socket of interprocess can (connectUnix(), listenUnix(), unixSocketPair(), unixSocketFromFd(), whose type is 'stream' by default). Local sockets (net.Socket), pipes and FIFOs carry bytes only.",
      );
    }
    if (list.length > 253) throw invalidArgument('options.fds', `holds ${list.length} descriptors; one message carries at most 253 (SCM_MAX_FD)`);
    return Int32Array.from(list);
  }

  /** The frames of this tick so far become a batch of their own. */
  #seal(): void {
    if (this.#open === null) return;
    const settle = this.#open;
    this.#open = null;
    this.#unsettled--; // #queue counts it again
    const replyBytes = this.#openReplyBytes;
    this.#openReplyBytes = 0;
    this.#queue({ bytes: this.#writer.bytes, chunks: this.#writer.take(), loans: this.#writer.takeLoans(), fds: null, settle, replyBytes });
  }

  /** Queues `batch` (its bytes read from the writer before take(), in the literal's order). */
  #queue(batch: Batch): void {
    this.#batchBytes += batch.bytes;
    this.#unsettled++;
    this.#batches.push(batch);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // nextTick runs after every promise continuation of this tick: a sender looping over awaited
    // sends fills the batch before it leaves.
    process.nextTick(() => {
      this.#seal(); // queues the batch without scheduling another flush
      this.#flushQueued = false;
      this.flush();
    });
  }

  /**
   * Reserves a message of `size` payload bytes at this point of the order (after every frame sent
   * before, before every frame sent after): `grant` gets its memory once the frames before it have
   * gone (in the peer's ring, with a transport that writes in place; else a Buffer), then commit()
   * or cancel() it; the frames after it wait until then. The outcome settles when it is written.
   */
  reserve(size: number, grant: (data: Uint8Array) => void): Outcome {
    this.#seal();
    const settle = new Outcome();
    this.#queue({ bytes: 0, chunks: [], loans: null, fds: null, settle, replyBytes: 0, reservation: { size, grant, inPlace: false, view: null, data: null } });
    return settle;
  }

  /** The reservation `data` was granted for: sends its first `length` bytes; false if it is no longer held. */
  commit(data: Uint8Array, length: number): boolean {
    const batch = this.#holding;
    const reserved = batch?.reservation;
    if (batch == null || reserved == null || reserved.data !== data) return false;
    this.#holding = null;
    if (reserved.inPlace) {
      new DataView(reserved.view!.buffer, reserved.view!.byteOffset, HEADER_BYTES).setUint32(0, length);
      this.#transport.commit!(HEADER_BYTES + length);
    } else {
      const header = Buffer.allocUnsafe(HEADER_BYTES);
      header.writeUInt32BE(length);
      this.#write({ ...batch, chunks: [header, data.subarray(0, length)] });
    }
    this.flush();
    return true;
  }

  /** Drops the reservation `data` was granted for: nothing of it is sent; false if it is no longer held. */
  cancel(data: Uint8Array): boolean {
    const batch = this.#holding;
    if (batch == null || batch.reservation?.data !== data) return false;
    this.#holding = null;
    if (batch.reservation.inPlace) this.#transport.cancel!();
    else this.#settled(batch);
    this.flush();
    return true;
  }

  /**
   * Closing: the reservation held is cancelled (its commit() then fails), and those still queued
   * fail with `failure` (their reserve() rejects). What was sent is not touched.
   */
  dropReservations(failure: InterprocessError): void {
    const held = this.#holding;
    if (held !== null) {
      this.#holding = null;
      if (held.reservation!.inPlace) this.#transport.cancel!();
      else this.#settled(held);
    }
    for (let i = this.#batches.length - 1; i >= 0; i--) {
      const batch = this.#batches[i]!;
      if (batch.reservation === undefined) continue;
      this.#batches.splice(i, 1);
      batch.settle.reject(failure);
      if (--this.#unsettled === 0) this.#flushed?.();
    }
    this.flush();
  }

  /** The reservation at the head of the queue gets its memory: in place if the transport can. */
  #grant(batch: Batch): void {
    const reserved = batch.reservation!;
    this.#holding = batch;
    // Marked before the call: a failure inside it is the transport's to settle (see fail()).
    reserved.inPlace = true;
    const inPlace = this.#transport.reserve?.(
      HEADER_BYTES + reserved.size,
      (view) => {
        reserved.view = view;
        reserved.data = view.subarray(HEADER_BYTES);
        reserved.grant(reserved.data);
      },
      (error?: unknown) => this.#settled(batch, error),
    );
    if (inPlace === true) return;
    reserved.inPlace = false;
    reserved.data = Buffer.allocUnsafe(reserved.size);
    reserved.grant(reserved.data);
  }

  /** A batch's write ended: its outcome, the counts, the loans given back. */
  #settled(batch: Batch, error?: unknown): void {
    this.#batchBytes -= batch.bytes;
    if (this.#underWaiters.length > 0) this.#wakeUnder();
    if (error) batch.settle.reject(this.#owner.error ?? fromSystemError(error, 'Sending failed'));
    else {
      // Written: the stream holds the chunks no more. (After a failure they are left to the collector.)
      if (batch.loans !== null) for (const loan of batch.loans) giveBack(loan);
      batch.settle.resolve();
    }
    if (--this.#unsettled === 0) this.#flushed?.();
    if (batch.replyBytes > 0) {
      this.#replyBytes -= batch.replyBytes;
      this.#owner.repliesWritten();
    }
  }

  #write(batch: Batch): void {
    this.#transport.write(batch.chunks, batch.fds, (error?: unknown) => this.#settled(batch, error));
  }

  /** Writes the batches that wait, while the transport takes them (again on its 'drain'). */
  flush(): void {
    const transport = this.#transport;
    while (this.#holding === null && this.#batches.length > 0 && !transport.full && !this.#failed) {
      const batch = this.#batches.shift()!;
      if (batch.reservation !== undefined) this.#grant(batch);
      else this.#write(batch);
    }
  }

  /** The channel is destroyed: nothing more is written, and what waits fails with `failure`. */
  fail(failure: InterprocessError): void {
    this.#failed = true;
    this.#wakeUnder();
    this.#seal();
    const holding = this.#holding;
    this.#holding = null;
    // A reservation granted in place settles with its transport's destroy(); a heap one here.
    if (holding !== null && !holding.reservation!.inPlace) this.#batches.unshift(holding);
    for (const batch of this.#batches.splice(0)) {
      this.#batchBytes -= batch.bytes;
      batch.settle.reject(failure);
      if (--this.#unsettled === 0) this.#flushed?.();
    }
  }
}
