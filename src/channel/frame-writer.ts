/** Writing frames: see frame.ts. */
import { giveBack, lend } from './buffers.js';
import { type Envelope, HEADER_BYTES, MAX_FRAME_LIMIT, frameTooLarge } from './frame.js';

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
  /** Large text frames are encoded into lent buffers (see takeLoans), else into fresh ones. */
  readonly #reuse: boolean;
  #slab: Buffer = Buffer.allocUnsafeSlow(SLAB_SIZE);
  /** Where the next frame goes in the slab. */
  #offset = 0;
  /** The start of the slab's bytes not yet cut into a chunk. */
  #start = 0;
  #chunks: Uint8Array[] = [];
  /** Lent buffers behind some of #chunks (see takeLoans). */
  #loans: Buffer[] = [];
  /** Bytes in #chunks (the slab's uncut bytes not counted). */
  #chunkBytes = 0;
  // Small text frames wait here, as strings, to be encoded together (see #settle): a placeholder
  // for the header and envelope, the name, the body. Per frame in #marks: where it starts in the
  // joined text, its payload's length in characters, kind, id, name length (-1: no name).
  readonly #texts: string[] = [];
  readonly #marks: number[] = [];
  /** Characters of the waiting frames, placeholders included. */
  #chars = 0;

  /**
   * `reuse`: encode large text frames into buffers lent from the pool (buffers.ts), to be given
   * back once written (takeLoans): only for a stream that copies what it writes (Transport#writesCopied).
   */
  constructor(reuse = false) {
    this.#reuse = reuse;
  }

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
      this.#large(body, max, kind, id, name);
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

  /** One large text frame, encoded now (see encodeLarge), joins the batch. */
  #large(body: string, max: number, kind: number, id: number, name: string | null): void {
    const { frame, bytes } = this.encodeLarge(body, max, { kind, id, name });
    this.#cut();
    this.#push(bytes === frame.length ? frame : frame.subarray(0, bytes));
    if (this.#reuse) this.#loans.push(frame);
  }

  /**
   * One large text frame in a buffer of its own, apart from any batch: its bytes are
   * frame[0, bytes). With `reuse` the buffer is lent (see buffers.ts): give it back once written.
   * Throws ERR_INTERPROCESS_FRAME_TOO_LARGE (having lent nothing) when the payload is over `max`.
   *
   * The buffer is sized for a byte a character, as JSON mostly is, and 4 bytes more: UTF-8 never
   * takes fewer bytes than characters, and a write that runs out of room stops less than 4 bytes
   * from the end (it writes whole characters only), so a write that ends earlier wrote everything,
   * with no count of the text's bytes first. Text with longer characters is counted and encoded
   * again into a buffer its size.
   */
  encodeLarge(body: string, max: number, envelope: Envelope): { frame: Buffer; bytes: number } {
    const { kind, id, name } = envelope;
    const extra = this.#envelopeLength(kind, id, name);
    if (extra + body.length > max) throw frameTooLarge(extra + Buffer.byteLength(body), max, 'send');
    const reuse = this.#reuse;
    let frame = reuse ? lend(HEADER_BYTES + extra + body.length + 4) : Buffer.allocUnsafeSlow(HEADER_BYTES + extra + body.length + 4);
    const at = writeEnvelope(frame, HEADER_BYTES, kind, id, name);
    let written = writeText(frame, body, at);
    if (at + written > frame.length - 4) {
      const bytes = Buffer.byteLength(body);
      if (bytes !== written) {
        if (reuse) giveBack(frame);
        if (extra + bytes > max) throw frameTooLarge(extra + bytes, max, 'send');
        frame = reuse ? lend(at + bytes) : Buffer.allocUnsafeSlow(at + bytes);
        writeEnvelope(frame, HEADER_BYTES, kind, id, name);
        written = writeText(frame, body, at);
      }
    }
    const length = at - HEADER_BYTES + written;
    if (length > max) {
      if (reuse) giveBack(frame);
      throw frameTooLarge(length, max, 'send');
    }
    writeLength(frame, 0, length);
    return { frame, bytes: at + written };
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

  /**
   * The lent buffers (see buffers.ts) behind the chunks take() returned last, or null for none:
   * give them back once the stream has written those chunks.
   */
  takeLoans(): Buffer[] | null {
    if (this.#loans.length === 0) return null;
    const loans = this.#loans;
    this.#loans = [];
    return loans;
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
