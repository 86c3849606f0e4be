/**
 * Framing: each frame is a 4-byte big-endian length followed by that many payload bytes
 * (the same as Python's multiprocessing.connection for frames under 2 GiB). The reader checks a
 * length against the limit before allocating anything for it.
 *
 * FrameWriter builds the bytes of a batch of frames with as few allocations and copies as it can:
 * small frames (header, envelope and body) are written one after the other into a shared slab,
 * text bodies straight from the string into it; a large body is its own chunk, never copied.
 * FrameReader splits received chunks into payloads, viewing them in place when a frame lies in one
 * chunk, and ties descriptors that arrived with a chunk to the frame its last byte belongs to.
 */
import { InterprocessError } from '../errors.js';

export const HEADER_BYTES = 4;
/**
 * The default maxMessageSize of channels (the largest frame payload): 16 MiB, the package's
 * DEFAULT_MAX_MESSAGE_SIZE (exported with MessagePipe's, the same value; a test checks they agree).
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
/** Largest frame a 4-byte length can say that Python's signed length also reads: 2 GiB - 1. */
export const MAX_FRAME_LIMIT = 0x7fffffff;

export function frameTooLarge(length: number, max: number, direction: 'send' | 'receive'): InterprocessError {
  const hint = direction === 'send' ? 'Send it in parts, or raise maxMessageSize on both sides.' : 'The peer sent more than this channel accepts (raise maxMessageSize if it is legitimate); the channel is closed.';
  return new InterprocessError('ERR_INTERPROCESS_FRAME_TOO_LARGE', `A frame of ${length} bytes is over the limit of ${max} bytes. ${hint}`);
}

// The slab small frames are written into; a new one when less than SLAB_ROOM is left. Memory once
// handed out in a chunk is never written again (the stream may still hold it), so the slab only
// moves forward, as Node's own Buffer pool does.
const SLAB_SIZE = 64 * 1024;
const SLAB_ROOM = 512;
// Binary bodies up to this size are copied into the slab (one chunk for many frames); larger ones
// go as chunks of their own, uncopied.
const COPY_LIMIT = 1024;
// Text bodies whose UTF-8 may take up to this much are encoded straight into the slab.
const TEXT_IN_SLAB = 16 * 1024;

/** The envelope a frame's payload starts with (RpcChannel's kind, id and name; none for Channel). */
export interface Envelope {
  /** Kind byte, or -1 for none. */
  kind: number;
  /** u32 id, or -1 for none. */
  id: number;
  /** u16-length-prefixed UTF-8 name, or null. */
  name: string | null;
}

const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (this: Buffer, start: number, end: number) => string }).utf8Slice;
/** The UTF-8 text of buffer[start, end) (utf8Slice, as Buffer#toString calls it after its argument checks). */
export const readText: (buffer: Buffer, start: number, end: number) => string =
  typeof utf8Slice === 'function' ? (buffer, start, end) => utf8Slice.call(buffer, start, end) : (buffer, start, end) => buffer.toString('utf8', start, end);

const NO_ENVELOPE: Envelope = { kind: -1, id: -1, name: null };
/** NUL strings for a header and envelope of each possible size (4 to 11 bytes), overwritten in place. */
const PLACEHOLDERS: string[] = Array.from({ length: 12 }, (_, n) => '\0'.repeat(n));

// Buffer#write(text, offset) is utf8Write plus argument handling that costs as much as the copy
// for a short string; Node's Buffer has had utf8Write(text, offset, length) in every version we
// support. The documented write() stays the fallback.
const utf8Write = (Buffer.prototype as unknown as { utf8Write?: (this: Buffer, text: string, offset: number, length: number) => number }).utf8Write;
const writeText: (buffer: Buffer, text: string, at: number) => number =
  typeof utf8Write === 'function' ? (buffer, text, at) => utf8Write.call(buffer, text, at, buffer.length - at) : (buffer, text, at) => buffer.write(text, at);

export class FrameWriter {
  #slab: Buffer = Buffer.allocUnsafeSlow(SLAB_SIZE);
  /** Where the next frame goes in the slab. */
  #offset = 0;
  /** The start of the slab's bytes not yet cut into a chunk. */
  #start = 0;
  #chunks: Uint8Array[] = [];
  /** Bytes in #chunks (the slab's uncut bytes not counted). */
  #chunkBytes = 0;
  // Small text frames wait here, as strings, to be encoded together (see #settle): a placeholder
  // for the header and envelope, the name, the body. Per frame in #marks: where it starts in the
  // joined text, its payload's length in characters, kind, id, name length (-1: no name).
  readonly #texts: string[] = [];
  readonly #marks: number[] = [];
  /** Characters of the waiting frames, placeholders included. */
  #chars = 0;

  /** Bytes of the frames added since the last take() (waiting text counted a byte a character). */
  get bytes(): number {
    return this.#chunkBytes + this.#offset - this.#start + this.#chars;
  }

  /**
   * Appends one frame: [length][envelope][body]; a string body is written as UTF-8. Throws
   * ERR_INTERPROCESS_FRAME_TOO_LARGE (having added nothing) when the payload is over `max`.
   */
  add(body: string | Uint8Array, max: number, envelope: Envelope = NO_ENVELOPE): void {
    const { kind, id, name } = envelope;
    const envelopeMax = (kind >= 0 ? 1 : 0) + (id >= 0 ? 4 : 0) + (name === null ? 0 : 2 + name.length * 3);
    if (typeof body === 'string') {
      const worst = HEADER_BYTES + envelopeMax + body.length * 3;
      if (worst <= TEXT_IN_SLAB && worst - HEADER_BYTES <= max) {
        this.#defer(body, kind, id, name);
        return;
      }
      this.#settle();
      if (worst <= TEXT_IN_SLAB) {
        this.#text(body, max, kind, id, name, worst);
        return;
      }
      // Large text: its exact size first, then one buffer for the whole frame.
      const length = this.#envelopeLength(kind, id, name) + Buffer.byteLength(body);
      if (length > max) throw frameTooLarge(length, max, 'send');
      const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
      frame.writeUInt32BE(length, 0);
      const at = writeEnvelope(frame, HEADER_BYTES, kind, id, name);
      writeText(frame, body, at);
      this.#cut();
      this.#push(frame);
      return;
    }
    this.#settle();
    if (body.byteLength <= COPY_LIMIT) {
      this.#room(HEADER_BYTES + envelopeMax + body.byteLength);
      const start = this.#offset;
      const at = this.#envelope(start + HEADER_BYTES, kind, id, name);
      this.#slab.set(body, at);
      this.#finish(start, at + body.byteLength, max);
      return;
    }
    this.#room(HEADER_BYTES + envelopeMax);
    const start = this.#offset;
    const at = this.#envelope(start + HEADER_BYTES, kind, id, name);
    const length = at - start - HEADER_BYTES + body.byteLength;
    if (length > max) throw frameTooLarge(length, max, 'send');
    this.#slab.writeUInt32BE(length, start);
    this.#offset = at;
    this.#cut();
    this.#push(body);
  }

  /** One small text frame written into the slab now. */
  #text(body: string, max: number, kind: number, id: number, name: string | null, worst: number): void {
    this.#room(worst);
    const start = this.#offset;
    let at = this.#envelope(start + HEADER_BYTES, kind, id, name);
    at += writeText(this.#slab, body, at);
    this.#finish(start, at, max);
  }

  /** A small text frame (never over the limit, even at 3 bytes a character) waits for #settle. */
  #defer(body: string, kind: number, id: number, name: string | null): void {
    const fixed = HEADER_BYTES + (kind >= 0 ? 1 : 0) + (id >= 0 ? 4 : 0) + (name === null ? 0 : 2);
    const nameLength = name === null ? -1 : name.length;
    this.#marks.push(this.#chars, fixed - HEADER_BYTES + Math.max(nameLength, 0) + body.length, kind, id, nameLength);
    this.#texts.push(PLACEHOLDERS[fixed]!);
    if (name !== null) this.#texts.push(name);
    this.#texts.push(body);
    this.#chars += fixed + Math.max(nameLength, 0) + body.length;
  }

  /**
   * Writes the waiting text frames. Encoding them as one string is one call instead of one a
   * frame (which on Node 20 cost more than the JSON.stringify of a small message). When the text
   * is all ASCII, as JSON mostly is, every character is one byte, so each frame's header and
   * envelope go where its placeholder landed; otherwise (and for a frame alone, which gains
   * nothing) the frames are written one by one.
   */
  #settle(): void {
    if (this.#chars === 0) return;
    const marks = this.#marks;
    const texts = this.#texts;
    // A frame alone (a request, a reply, a message of its own tick) gains nothing from a join.
    if (marks.length === 5 || !this.#settleTogether()) {
      // texts holds, a frame after another: its placeholder, its name if it has one, its body.
      for (let k = 0, t = 0; k < marks.length; k += 5) {
        t++;
        const name = marks[k + 4]! >= 0 ? texts[t++]! : null;
        this.#text(texts[t++]!, MAX_FRAME_LIMIT, marks[k + 2]!, marks[k + 3]!, name, HEADER_BYTES + marks[k + 1]! * 3);
      }
    }
    texts.length = 0;
    marks.length = 0;
    this.#chars = 0;
  }

  /** The waiting frames as one string, if it is ASCII; false (having written nothing) if not. */
  #settleTogether(): boolean {
    const chars = this.#chars;
    const text = this.#texts.join('');
    if (Buffer.byteLength(text) !== chars) return false;
    this.#room(chars);
    const slab = this.#slab;
    const base = this.#offset;
    writeText(slab, text, base);
    const marks = this.#marks;
    for (let k = 0; k < marks.length; k += 5) {
      const start = base + marks[k]!;
      writeLength(slab, start, marks[k + 1]!);
      let at = start + HEADER_BYTES;
      const kind = marks[k + 2]!;
      const id = marks[k + 3]!;
      const nameLength = marks[k + 4]!;
      if (kind >= 0) slab[at++] = kind;
      if (id >= 0) at = slab.writeUInt32BE(id, at);
      if (nameLength >= 0) slab.writeUInt16BE(nameLength, at);
    }
    this.#offset = base + chars;
    return true;
  }

  #push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#chunkBytes += chunk.byteLength;
  }

  /** The chunks of every frame added since the last take(), in order; starts a new batch. */
  take(): Uint8Array[] {
    this.#settle();
    this.#cut();
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#chunkBytes = 0;
    return chunks;
  }

  #room(bytes: number): void {
    if (this.#offset + bytes <= this.#slab.length) return;
    this.#cut();
    this.#slab = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, bytes));
    this.#offset = 0;
    this.#start = 0;
  }

  #cut(): void {
    if (this.#offset > this.#start) this.#push(this.#slab.subarray(this.#start, this.#offset));
    this.#start = this.#offset;
    if (this.#slab.length - this.#offset < SLAB_ROOM) {
      this.#slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.#offset = 0;
      this.#start = 0;
    }
  }

  #envelope(at: number, kind: number, id: number, name: string | null): number {
    return kind < 0 && name === null ? at : writeEnvelope(this.#slab, at, kind, id, name);
  }

  #envelopeLength(kind: number, id: number, name: string | null): number {
    return (kind >= 0 ? 1 : 0) + (id >= 0 ? 4 : 0) + (name === null ? 0 : 2 + Buffer.byteLength(name));
  }

  /** The frame written at [start, end) gets its length, or is taken back if too large. */
  #finish(start: number, end: number, max: number): void {
    const length = end - start - HEADER_BYTES;
    if (length > max) throw frameTooLarge(length, max, 'send');
    writeLength(this.#slab, start, length);
    this.#offset = end;
  }
}

/** A frame header: `length` as a big-endian u32 at buffer[at] (byte stores: cheaper than writeUInt32BE's checks). */
function writeLength(buffer: Buffer, at: number, length: number): void {
  buffer[at] = length >>> 24;
  buffer[at + 1] = (length >>> 16) & 0xff;
  buffer[at + 2] = (length >>> 8) & 0xff;
  buffer[at + 3] = length & 0xff;
}

function writeEnvelope(buffer: Buffer, at: number, kind: number, id: number, name: string | null): number {
  if (kind >= 0) buffer[at++] = kind;
  if (id >= 0) at = buffer.writeUInt32BE(id, at);
  if (name !== null) {
    const n = writeText(buffer, name, at + 2);
    buffer.writeUInt16BE(n, at);
    at += 2 + n;
  }
  return at;
}

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
 * Where a copy of `source` should start in a fresh buffer: at the same address modulo 16. memmove
 * (glibc's, on the AMD EPYC of our CI) copies 64 KiB three times slower when source and
 * destination differ there, and a frame that spans reads starts anywhere in the first (after its
 * header, at least 4 bytes in). Buffers of 4 KiB and more are their own 16-byte aligned
 * allocations, so the offset in the ArrayBuffer gives the address modulo 16.
 */
export function skewOf(source: Uint8Array): number {
  return source.byteOffset & 15;
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
    const joined = Buffer.allocUnsafe(skew + length);
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
