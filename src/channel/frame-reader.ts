/** Reading frames: see frame.ts. */
import { received, scratch } from './buffers.js';
import { HEADER_BYTES, frameTooLarge, skewOf } from './frame.js';

/**
 * Called with each payload, as `buffer[start, end)` (no view is made for it: the handler makes
 * one if it needs it), and the descriptors that came with it (null: none).
 */
export type FrameHandler<D> = (buffer: Buffer, start: number, end: number, fds: D[] | null) => void;

/** The big-endian u32 at chunk[at] (a frame header), without a view or a bounds check. */
function lengthAt(chunk: Buffer, at: number): number {
  return ((chunk[at]! << 24) | (chunk[at + 1]! << 16) | (chunk[at + 2]! << 8) | chunk[at + 3]!) >>> 0;
}

/**
 * Called with two or more payloads that lay whole, one after the other, in one chunk and came
 * with no descriptors: payload i is `buffer[spans[2i], spans[2i + 1])`, each preceded by its
 * 4-byte header. `spans` is reused: read it before returning. Returns how many of them it took:
 * fewer than `count` only when it held the reader (see FrameReader#hold), which keeps the rest.
 */
export type RunHandler = (buffer: Buffer, spans: readonly number[], count: number) => number;

// An unfinished frame's bytes are held in proportion to the bytes received, never to the length
// its header announced: a piece of a read of at least KEEP_BYTES that is at least a quarter of
// the memory behind it is kept as a view (no copy; what it pins is at most four times its size:
// a frame that starts late in a 64 KiB read is not copied twice); smaller pieces are copied one
// after another into a tail buffer that grows geometrically (at most twice the bytes in it, or
// TAIL_MIN, never past the frame's end: a small frame split across reads is completed in place).
// A peer that trickles a frame a byte a write then costs about twice the frame, not a Buffer per
// byte.
const KEEP_BYTES = 8 * 1024;
const TAIL_MIN = 4 * 1024;

/**
 * Splits a byte stream into frame payloads. Feed it chunks; it calls `onFrame` per payload, or,
 * when given, `onRun` once for the payloads that lay whole in one chunk (see RunHandler).
 *
 * Flow control: a handler may call hold(); the reader then stops after the current frame and
 * keeps the rest of the chunk (and any chunk pushed meanwhile) unread until resume().
 */
export class FrameReader<D = never> {
  readonly #max: number;
  readonly #onFrame: FrameHandler<D>;
  readonly #onRun: RunHandler | null;
  readonly #spans: number[] = [];
  /** A header split across chunks: its first #headBytes bytes. */
  readonly #head: Buffer = Buffer.alloc(HEADER_BYTES);
  #headBytes = 0;
  /** Length of the frame being read, or -1 while waiting for a header. */
  #length = -1;
  /** Payload bytes of the unfinished frame received so far (in #parts, then the tail). */
  #buffered = 0;
  /** Pieces of the unfinished frame, in order, before the tail. */
  #parts: Buffer[] = [];
  /** Where small pieces are copied: its bytes are [#tailStart, #tailEnd). */
  #tail: Buffer | null = null;
  #tailStart = 0;
  #tailEnd = 0;
  /** Where the payload starts in the buffer #complete returned. */
  #completeAt = 0;
  /** Descriptors that came with bytes of the unfinished frame. */
  #carried: D[] | null = null;
  #held = false;
  /** Inside #read: resume() then only lifts the hold (the read under way goes on, in order). */
  #reading = false;
  /**
   * The frame handler keeps no view of a payload once it returns, and runs no code of others
   * before it is done with the bytes (it decodes json): a frame joined from several reads then
   * goes to the shared scratch buffer (buffers.ts), not to fresh memory.
   */
  transient = false;
  /** Chunks (and their descriptors) not read yet because the reader is held: chunk, fds, ... */
  #backlog: Array<Buffer | D[] | null> = [];

  constructor(maxMessageSize: number, onFrame: FrameHandler<D>, onRun: RunHandler | null = null) {
    this.#max = maxMessageSize;
    this.#onFrame = onFrame;
    this.#onRun = onRun;
  }

  /** Bytes of an unfinished frame (header included): non-zero at end of stream means truncation. */
  get pending(): number {
    return this.#length >= 0 ? HEADER_BYTES + this.#buffered : this.#headBytes;
  }

  /** The length the unfinished frame announced, or -1. */
  get expected(): number {
    return this.#length;
  }

  /** Descriptors held for the unfinished frame and in chunks not read yet (closed by the owner when the stream ends). */
  get carried(): readonly D[] {
    let all = this.#carried ?? [];
    for (let i = 1; i < this.#backlog.length; i += 2) {
      const fds = this.#backlog[i] as D[] | null;
      if (fds !== null) all = all.concat(fds);
    }
    return all;
  }

  /** Whether hold() is in force. */
  get held(): boolean {
    return this.#held;
  }

  /** Whether received bytes wait, unread, for resume(). */
  get backlogged(): boolean {
    return this.#backlog.length > 0;
  }

  /** Stops handing out frames after the current one: the rest waits, unread, for resume(). */
  hold(): void {
    this.#held = true;
  }

  /** Reads what waited (until a handler holds again), then takes chunks as they come. */
  resume(): void {
    this.#held = false;
    if (this.#reading) return;
    const backlog = this.#backlog;
    this.#reading = true;
    try {
      while (!this.#held && backlog.length > 0) {
        const chunk = backlog.shift() as Buffer;
        const fds = backlog.shift() as D[] | null;
        this.#read(chunk, fds);
      }
    } finally {
      this.#reading = false;
    }
  }

  /** Drops the chunks not read yet (the stream is gone). */
  discard(): void {
    this.#backlog = [];
  }

  /**
   * Consumes a chunk; `fds` arrived with it and belong to the frame its last byte is part of
   * (see docs/channel.md). Throws ERR_INTERPROCESS_FRAME_TOO_LARGE (the stream is then unusable).
   */
  push(chunk: Buffer, fds: D[] | null = null): void {
    if (this.#held || this.#backlog.length > 0 || this.#reading) {
      this.#backlog.push(chunk, fds);
      return;
    }
    this.#reading = true;
    try {
      this.#read(chunk, fds);
    } finally {
      this.#reading = false;
    }
  }

  #read(chunk: Buffer, fds: D[] | null): void {
    const end = chunk.length;
    let at = 0;
    if (this.#length >= 0 || this.#headBytes > 0) {
      // Finish the frame an earlier chunk began.
      if (this.#length < 0) {
        const need = HEADER_BYTES - this.#headBytes;
        if (end < need) {
          chunk.copy(this.#head, this.#headBytes, 0, end);
          this.#headBytes += end;
          return this.#carry(fds);
        }
        chunk.copy(this.#head, this.#headBytes, 0, need);
        this.#headBytes = 0;
        at = need;
        this.#length = this.#checked(lengthAt(this.#head, 0));
      }
      const need = this.#length - this.#buffered;
      if (end - at < need) return this.#stash(chunk, at, fds);
      const start = at;
      at += need;
      const length = this.#length;
      this.#length = -1;
      if (this.#buffered > 0) {
        const frame = this.#complete(chunk, start, at, length);
        const from = this.#completeAt;
        fds = this.#emit(frame, from, from + length, at === end, fds);
      } else {
        fds = this.#emit(chunk, start, at, at === end, fds);
      }
      if (this.#held) return this.#keep(chunk, at, fds);
    }
    if (this.#onRun !== null && fds === null) {
      at = this.#run(chunk, at);
      if (this.#held) return this.#keep(chunk, at, fds);
    }
    while (at < end) {
      if (end - at < HEADER_BYTES) {
        chunk.copy(this.#head, 0, at, end);
        this.#headBytes = end - at;
        return this.#carry(fds);
      }
      const length = this.#checked(lengthAt(chunk, at));
      if (end - at - HEADER_BYTES < length) {
        this.#length = length;
        return this.#stash(chunk, at + HEADER_BYTES, fds);
      }
      const start = at + HEADER_BYTES;
      at = start + length;
      fds = this.#emit(chunk, start, at, at === end, fds);
      if (this.#held) return this.#keep(chunk, at, fds);
    }
  }

  /** The reader was held: chunk[at..] (with the descriptors not yet placed) waits for resume(). */
  #keep(chunk: Buffer, at: number, fds: D[] | null): void {
    if (at < chunk.length) this.#backlog.unshift(chunk.subarray(at), fds);
    else if (fds !== null) this.#carry(fds);
  }

  /**
   * Hands the frames that lie whole in chunk[at..] to onRun (a single one to onFrame); returns
   * where the first frame not handed out starts. A frame over the limit throws after those before it.
   */
  #run(chunk: Buffer, at: number): number {
    const end = chunk.length;
    const spans = this.#spans;
    let n = 0;
    let tooLarge = -1;
    while (end - at >= HEADER_BYTES) {
      const length = lengthAt(chunk, at);
      if (length > this.#max) {
        tooLarge = length;
        break;
      }
      if (end - at - HEADER_BYTES < length) break;
      spans[n++] = at + HEADER_BYTES;
      at += HEADER_BYTES + length;
      spans[n++] = at;
    }
    if (n === 2) this.#emit(chunk, spans[0]!, spans[1]!, false, null);
    else if (n > 2) {
      const taken = this.#onRun!(chunk, spans, n >> 1);
      if (taken < n >> 1) return spans[2 * taken]! - HEADER_BYTES;
    }
    if (tooLarge >= 0 && !this.#held) throw frameTooLarge(tooLarge, this.#max, 'receive');
    return at;
  }

  #checked(length: number): number {
    if (length > this.#max) throw frameTooLarge(length, this.#max, 'receive');
    return length;
  }

  /** Hands out a payload with what descriptors are its; returns the chunk's that are not (yet) placed. */
  #emit(buffer: Buffer, start: number, end: number, last: boolean, fds: D[] | null): D[] | null {
    let mine = this.#carried;
    this.#carried = null;
    if (last && fds !== null) {
      mine = mine === null ? fds : mine.concat(fds);
      fds = null;
    }
    this.#onFrame(buffer, start, end, mine);
    return fds;
  }

  #carry(fds: D[] | null): void {
    if (fds !== null) this.#carried = this.#carried === null ? fds : this.#carried.concat(fds);
  }

  /** Keeps chunk[from..] for the unfinished frame, with the chunk's descriptors (its last byte is in it). */
  #stash(chunk: Buffer, from: number, fds: D[] | null): void {
    const n = chunk.length - from;
    if (n > 0) {
      if (n >= KEEP_BYTES && chunk.buffer.byteLength <= 4 * n) {
        this.#closeTail();
        this.#parts.push(from === 0 ? chunk : chunk.subarray(from));
      } else {
        this.#append(chunk, from, chunk.length);
      }
      this.#buffered += n;
    }
    this.#carry(fds);
  }

  /** Copies chunk[from, to) after the tail's bytes, growing it if needed (see TAIL_MIN). */
  #append(chunk: Buffer, from: number, to: number): void {
    const n = to - from;
    let tail = this.#tail;
    if (tail === null || this.#tailEnd + n > tail.length) {
      const held = this.#tailEnd - this.#tailStart;
      // The frame's first bytes keep the address modulo 16 they had (see skewOf); later tails
      // follow the first one's.
      const skew = tail !== null ? this.#tailStart : this.#parts.length === 0 ? (chunk.byteOffset + from) & 15 : 0;
      const rest = this.#length - this.#buffered; // of the frame, this piece included
      const capacity = Math.max(held + n, Math.min(Math.max(2 * (held + n), TAIL_MIN), held + rest));
      const grown = Buffer.allocUnsafeSlow(skew + capacity);
      if (tail !== null) tail.copy(grown, skew, this.#tailStart, this.#tailEnd);
      this.#tail = tail = grown;
      this.#tailStart = skew;
      this.#tailEnd = skew + held;
    }
    chunk.copy(tail, this.#tailEnd, from, to);
    this.#tailEnd += n;
  }

  /** The tail's bytes become a part (a view: the tail is at most twice their size). */
  #closeTail(): void {
    if (this.#tail !== null && this.#tailEnd > this.#tailStart) this.#parts.push(this.#tail.subarray(this.#tailStart, this.#tailEnd));
    this.#tail = null;
    this.#tailStart = this.#tailEnd = 0;
  }

  /**
   * The unfinished frame, completed by chunk[start, end), in one buffer: its payload starts at
   * #completeAt. Copied once, at the address modulo 16 its first bytes had (see skewOf); a tail
   * with room for the rest is completed in place.
   */
  #complete(chunk: Buffer, start: number, end: number, length: number): Buffer {
    this.#buffered = 0;
    const tail = this.#tail;
    if (this.#parts.length === 0 && tail !== null && this.#tailEnd + (end - start) <= tail.length) {
      chunk.copy(tail, this.#tailEnd, start, end);
      this.#completeAt = this.#tailStart;
      this.#tail = null; // the handler may keep views of it
      this.#tailStart = this.#tailEnd = 0;
      return tail;
    }
    this.#closeTail();
    const parts = this.#parts;
    this.#parts = [];
    const skew = skewOf(parts[0]!);
    // A frame its handler only decodes (transient) is joined in the shared scratch buffer.
    const joined = this.transient ? scratch(skew + length) : received(skew + length);
    let at = skew;
    for (const part of parts) {
      joined.set(part, at);
      at += part.length;
    }
    chunk.copy(joined, at, start, end);
    this.#completeAt = skew;
    return joined;
  }
}
