/**
 * Json frames that lay whole in one read, parsed together with one JSON.parse (about half the
 * cost per small message of parsing each alone): see JsonRuns#parse for why this reads exactly
 * what parsing each frame alone would.
 */
import { scratch as sharedScratch } from './buffers.js';
import { HEADER_BYTES, readText, skewOf } from './frame.js';

/**
 * Whether a json payload begins and ends like one object, array or string (no whitespace around
 * it, as JSON.stringify writes it): only such frames are parsed together.
 */
export function looksWhole(buffer: Buffer, start: number, end: number): boolean {
  if (end - start < 2) return false;
  const first = buffer[start];
  const last = buffer[end - 1];
  return (first === 0x7b && last === 0x7d) || (first === 0x5b && last === 0x5d) || (first === 0x22 && last === 0x22);
}

/** Parses runs of json frames, laid out in the shared scratch buffer (buffers.ts). */
export class JsonRuns {
  /**
   * The values of json frames from..to (of spans: payload start, end, per frame) parsed with one
   * JSON.parse, or null if they do not read as exactly one value each (then each frame is parsed
   * on its own, which finds the bad one).
   *
   * The frames are copied as they lie, each header turned into a separator ('[' for the first,
   * ',' after), with ']' after the last. Each separator holds a newline, which JSON allows only
   * outside strings, so a separator the parse accepted is outside every string; with every frame
   * beginning and ending with the brackets or quotes of one value (looksWhole) and as many values
   * as frames, each frame held one value, which JSON.parse reads exactly as it reads it alone.
   * (Frames crafted to be unbalanced in ways that cancel out could pass, but they only yield
   * values that their peer could as well have sent in well-formed frames.)
   */
  parse(buffer: Buffer, spans: readonly number[], from: number, to: number): unknown[] | null {
    const first = spans[2 * from]! - HEADER_BYTES;
    const size = spans[2 * to - 1]! - first + 1;
    // The copy keeps the bytes' address modulo 16 (see skewOf): the scratch buffer is its own allocation.
    // It is read by the one JSON.parse below, before any value reaches user code.
    const skew = (skewOf(buffer) + first) & 15;
    const scratch = sharedScratch(skew + size);
    buffer.copy(scratch, skew, first, size - 1 + first);
    for (let k = from; k < to; k++) {
      const at = skew + spans[2 * k]! - HEADER_BYTES - first;
      scratch[at] = k === from ? 0x5b : 0x2c; // '[' or ','
      scratch[at + 1] = 0x0a; // '\n'
      scratch[at + 2] = 0x20;
      scratch[at + 3] = 0x20;
    }
    scratch[skew + size - 1] = 0x5d; // ']'
    let values: unknown;
    try {
      values = JSON.parse(readText(scratch, skew, skew + size));
    } catch {
      return null;
    }
    if (!Array.isArray(values) || values.length !== to - from) return null;
    return values;
  }
}
