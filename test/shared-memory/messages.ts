/** The messages both sides of the shared-memory exchange tests send: deterministic, so each side checks what it receives. */
import { createHash } from 'node:crypto';

/** Sizes from 0 B to 8 MiB, cycled: empty, tiny, around a record header, pieces, larger than a ring. */
export const SIZES = [0, 1, 7, 8, 63, 64, 65, 4095, 4096, 32760, 65536, 300_001, 1 << 20, (1 << 20) + 3, 8 << 20, 17, 0, 2_500_000];

/** Message `index`: its size from SIZES, its index in the first 4 bytes, then a pattern of it. */
export function message(index: number): Buffer {
  const size = SIZES[index % SIZES.length]!;
  const buffer = Buffer.allocUnsafe(size);
  const pattern = Buffer.alloc(8);
  pattern.writeUInt32LE(Math.imul(index + 1, 2654435761) >>> 0, 0);
  pattern.writeUInt32LE(Math.imul(index + 7, 40503) >>> 0, 4);
  buffer.fill(pattern);
  if (size >= 4) buffer.writeUInt32LE(index, 0);
  return buffer;
}

/** How many messages make at least `bytes`. */
export function countFor(bytes: number): number {
  let total = 0;
  let count = 0;
  while (total < bytes) total += SIZES[count++ % SIZES.length]!;
  return count;
}

/** A running SHA-256 of message bodies, with their lengths (so boundaries count). */
export class Digest {
  readonly #hash = createHash('sha256');
  add(body: Uint8Array): void {
    const length = Buffer.alloc(4);
    length.writeUInt32LE(body.byteLength);
    this.#hash.update(length);
    this.#hash.update(body);
  }
  hex(): string {
    return this.#hash.digest('hex');
  }
}
