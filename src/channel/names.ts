/**
 * The u16-length-prefixed names of RpcChannel's frames (methods, events). A peer mostly repeats
 * its last name, so the last short one is kept with its bytes: the same bytes give the same
 * string without decoding.
 */
import { readText } from './frame.js';

export class NameReader {
  /** The u16-length-prefixed name at buffer[at], and where what follows it starts. */
  read(buffer: Buffer, at: number, end: number): string {
    if (at + 2 > end) throw new Error('the frame ends inside a name');
    const length = (buffer[at]! << 8) | buffer[at + 1]!;
    const start = at + 2;
    this.after = start + length;
    if (this.after > end) throw new Error('name runs past the end of the frame');
    // A peer mostly repeats its last name: the same bytes give the same string, without decoding.
    const last = this.#lastNameBytes;
    if (length === last.length && length <= 64) {
      let same = true;
      for (let i = 0; i < length && same; i++) same = buffer[start + i] === last[i];
      if (same) return this.#lastName;
    }
    const name = readText(buffer, start, this.after);
    if (length <= 64) {
      this.#lastNameBytes = Buffer.from(buffer.subarray(start, this.after));
      this.#lastName = name;
    }
    return name;
  }

  /** The last short name read, and its bytes. */
  #lastName = '';
  #lastNameBytes: Buffer = Buffer.alloc(0);

  /** Where the last name read ended (where what follows it starts). */
  after = 0;
}
