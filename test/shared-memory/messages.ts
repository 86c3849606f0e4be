/** The messages both sides of the shared-memory exchange tests send: deterministic, so each side checks what it receives. */
import { createHash } from 'node:crypto';
import type { Channel } from 'interprocess';

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

/** What one side of an exchange saw. */
export interface Exchanged {
  /** Messages received, and their bytes. */
  received: number;
  bytes: number;
  /** The first received message that was not the one expected (-1: none), and how many were not. */
  firstBad: number;
  bad: number;
  sentDigest: string;
  receivedDigest: string;
}

/**
 * Sends `count` messages on `channel` while receiving as many, checking each; then closes it.
 * Each side closes once it has everything both ways: the first end would close the other side (a
 * channel finishes its side when the peer's ends), failing sends it had not made yet.
 */
export async function exchange(channel: Channel<Buffer>, count: number): Promise<Exchanged> {
  const sent = new Digest();
  const sending = (async () => {
    for (let i = 0; i < count; i++) {
      const body = message(i);
      sent.add(body);
      await channel.send(body);
    }
  })();
  const received = new Digest();
  const seen = { received: 0, bytes: 0, firstBad: -1, bad: 0 };
  if (count > 0) {
    for await (const body of channel.iterator({ closeOnReturn: false })) {
      received.add(body);
      if (!body.equals(message(seen.received))) {
        seen.bad++;
        if (seen.firstBad < 0) seen.firstBad = seen.received;
      }
      seen.bytes += body.length;
      if (++seen.received === count) break;
    }
  }
  await sending;
  await channel.close();
  return { ...seen, sentDigest: sent.hex(), receivedDigest: received.hex() };
}
