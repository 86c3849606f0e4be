/**
 * Memory reused from one large message to the next, instead of fresh memory for each.
 *
 * A fresh buffer of 64 KiB or more is fresh pages: the allocator hands freed ones back to the
 * kernel (glibc trims its heap; buffers over 128 KiB are mmap'd alone), so every byte of a new
 * one costs a page fault on first touch, and on a virtual machine a fault costs more than the
 * copy that touches it. Sending and receiving a 64 KiB json message took about 30 faults a side
 * when each frame had buffers of its own (docs/channel.md, "Large messages").
 *
 * - `scratch(bytes)`: one buffer per thread for bytes that live only while they are decoded,
 *   synchronously, before any user code runs (a json frame assembled from several reads, a run
 *   of json frames parsed together). Kept up to SCRATCH_KEEP bytes; a larger frame gets a buffer
 *   of its own.
 * - `lend(bytes)` / `giveBack(buffer)`: buffers a large text frame is encoded into, lent until
 *   the stream has written them (its write callback), then kept for the next frame: at most
 *   POOL_BYTES in all, none over POOL_MAX_BUFFER.
 * - `received(bytes)`: memory for a large message handed to user code, kept as long as the user
 *   keeps it: a warm block of the addon's (native/common/slab.c), which comes back to its pool when
 *   its ArrayBuffer is collected. A 1 MiB message copied into fresh memory cost about 550 µs of
 *   page faults; into a warm block, the copy alone (27 µs).
 */
import { type NativeSlabs, optionalNative } from '../native/addon.js';

const SCRATCH_KEEP = 4 * 1024 * 1024;
const POOL_BYTES = 8 * 1024 * 1024;
const POOL_MAX_BUFFER = 4 * 1024 * 1024;
/** Lent buffers are sized in steps of an eighth of a power of two (at most 12.5% unused), from 64 KiB. */
const POOL_MIN_BUFFER = 64 * 1024;

let shared: Buffer | null = null;

/** A buffer of at least `bytes` whose contents live only until the caller returns (see above). */
export function scratch(bytes: number): Buffer {
  if (shared !== null && shared.length >= bytes) return shared;
  if (bytes > SCRATCH_KEEP) return Buffer.allocUnsafeSlow(bytes);
  const buffer = Buffer.allocUnsafeSlow(Math.min(SCRATCH_KEEP, Math.max(bytes, 2 * (shared?.length ?? 0), 4096)));
  shared = buffer;
  return buffer;
}

/** Messages from this size on get warm blocks (smaller ones come from the allocator's warm heap). */
const WARM_MIN = 256 * 1024;
const WARM_MAX = 32 * 1024 * 1024;
let slabs: NativeSlabs | null | undefined;

/** A buffer of `bytes` for a received message that user code may keep (see above). */
export function received(bytes: number): Buffer {
  if (bytes >= WARM_MIN && bytes <= WARM_MAX) {
    slabs ??= optionalNative()?.slabs ?? null;
    const memory = slabs?.take(bytes);
    if (memory !== undefined) return Buffer.from(memory, 0, bytes);
  }
  return Buffer.allocUnsafe(bytes);
}

const free: Buffer[] = [];
let freeBytes = 0;

/** The size lend() allocates for `bytes`: 64 KiB at least, then eight steps per doubling. */
function sizeFor(bytes: number): number {
  if (bytes <= POOL_MIN_BUFFER) return POOL_MIN_BUFFER;
  const step = 2 ** (Math.ceil(Math.log2(bytes)) - 4); // an eighth of the power of two below
  return Math.ceil(bytes / step) * step;
}

/** A buffer of at least `bytes` (its own allocation: 16-byte aligned) to write a frame into; see giveBack(). */
export function lend(bytes: number): Buffer {
  let best = -1;
  for (let i = 0; i < free.length; i++) {
    const length = free[i]!.length;
    if (length >= bytes && (best < 0 || length < free[best]!.length)) best = i;
  }
  if (best >= 0) {
    const buffer = free[best]!;
    free[best] = free[free.length - 1]!;
    free.pop();
    freeBytes -= buffer.length;
    return buffer;
  }
  return Buffer.allocUnsafeSlow(bytes > POOL_MAX_BUFFER ? bytes : sizeFor(bytes));
}

/**
 * A lent buffer back, once nothing reads it any more (the stream called back): kept for the next
 * lend() while the pool has room, else left to the garbage collector.
 */
export function giveBack(buffer: Buffer): void {
  if (buffer.length > POOL_MAX_BUFFER) return;
  // Full: a larger buffer replaces the smallest kept (a smaller one is dropped).
  while (freeBytes + buffer.length > POOL_BYTES) {
    let smallest = 0;
    for (let i = 1; i < free.length; i++) if (free[i]!.length < free[smallest]!.length) smallest = i;
    if (free.length === 0 || free[smallest]!.length >= buffer.length) return;
    freeBytes -= free[smallest]!.length;
    free[smallest] = free[free.length - 1]!;
    free.pop();
  }
  free.push(buffer);
  freeBytes += buffer.length;
}
