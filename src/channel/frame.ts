/**
 * Framing: each frame is a 4-byte big-endian length followed by that many payload bytes
 * (the same as Python's multiprocessing.connection for frames under 2 GiB). The reader checks a
 * length against the limit before allocating anything for it.
 */
import { InterprocessError } from '../errors.js';

export const HEADER_BYTES = 4;
/** Default largest frame: 16 MiB. */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;
/** Largest frame a 4-byte length can say that Python's signed length also reads: 2 GiB - 1. */
export const MAX_FRAME_LIMIT = 0x7fffffff;

export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(length, 0);
  return header;
}

export function frameTooLarge(length: number, max: number, direction: 'send' | 'receive'): InterprocessError {
  const hint = direction === 'send' ? 'Send it in parts, or raise maxFrameSize on both sides.' : 'The peer sent more than this channel accepts (raise maxFrameSize if it is legitimate); the channel is closed.';
  return new InterprocessError('ERR_INTERPROCESS_FRAME_TOO_LARGE', `A frame of ${length} bytes is over the limit of ${max} bytes. ${hint}`);
}

/** Splits a byte stream into frame payloads. Feed it chunks; it calls `onFrame` per payload. */
export class FrameReader {
  readonly #max: number;
  readonly #onFrame: (payload: Buffer) => void;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Length of the frame being read, or -1 while waiting for a header. */
  #length = -1;

  constructor(maxFrameSize: number, onFrame: (payload: Buffer) => void) {
    this.#max = maxFrameSize;
    this.#onFrame = onFrame;
  }

  /** Bytes of an unfinished frame (header included): non-zero at end of stream means truncation. */
  get pending(): number {
    return this.#buffered + (this.#length >= 0 ? HEADER_BYTES : 0);
  }

  /** The length the unfinished frame announced, or -1. */
  get expected(): number {
    return this.#length;
  }

  /** Consumes a chunk; throws ERR_INTERPROCESS_FRAME_TOO_LARGE (the stream is then unusable). */
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#length < 0) {
        if (this.#buffered < HEADER_BYTES) return;
        const length = this.#take(HEADER_BYTES).readUInt32BE(0);
        if (length > this.#max) throw frameTooLarge(length, this.#max, 'receive');
        this.#length = length;
      }
      if (this.#buffered < this.#length) return;
      const payload = this.#take(this.#length);
      this.#length = -1;
      this.#onFrame(payload);
    }
  }

  /** Removes `n` bytes from the front: a view when one chunk holds them, one copy otherwise. */
  #take(n: number): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}
