/**
 * One ring of the shared-memory layout (docs/shared-memory.md, version 1): the reader's and the
 * writer's side. The region is writable by the peer at every moment, so every word read from it
 * is read once into a local, checked, then used; a word that breaks the layout throws
 * ERR_INTERPROCESS_SHARED_MEMORY, never reads or writes outside the ring.
 */
import { InterprocessError } from '../errors.js';

/** The layout's constants (docs/shared-memory.md). */
export const MAGIC = 0x4d535049;
export const VERSION = 1;
export const HEADER_SIZE = 384;
export const MIN_CAPACITY = 4096;
export const MAX_CAPACITY = 2 ** 30;
export const OFFSET = {
  magic: 0,
  version: 4,
  headerSize: 8,
  capacity: 12,
  flags: 16,
  tail: 128,
  writerWaiting: 132,
  writerState: 136,
  head: 256,
  readerWaiting: 260,
  readerState: 264,
} as const;
export const KIND = { whole: 1, first: 2, middle: 3, last: 4, padding: 5 } as const;
export const STATE = { open: 0, ended: 1, failed: 2 } as const;
const RECORD_HEADER = 8;
// A piece this short is not worth splitting off to fill the space left before the ring's end.
const MIN_SPLIT = 4096;

/** What the native core gives for a mapped region (native/unix/shm.c). */
export interface NativeRegion {
  readonly buffer: ArrayBuffer;
  load(offset: number): number;
  store(offset: number, value: number): void;
  publish(offset: number, value: number, waitingOffset: number): boolean;
  sleep(waitingOffset: number, watchOffset: number, seen: number): boolean;
  spin(watchOffset: number, seen: number, ns: number): boolean;
  unmap(): void;
}

/** The peer broke the layout. */
export function layoutError(what: string): InterprocessError {
  return new InterprocessError(
    'ERR_INTERPROCESS_SHARED_MEMORY',
    `The peer broke the shared-memory layout (${what}); the channel is closed. The peer is faulty or hostile: see docs/shared-memory.md.`,
  );
}

const align8 = (n: number): number => (n + 7) & ~7;

/** The ring data and its header words, as plain views (the ordered words go through the region). */
class RingView {
  readonly region: NativeRegion;
  readonly capacity: number;
  readonly data: Uint8Array;
  readonly words: Uint32Array;
  constructor(region: NativeRegion, capacity: number) {
    this.region = region;
    this.capacity = capacity;
    this.data = new Uint8Array(region.buffer, HEADER_SIZE, capacity);
    this.words = new Uint32Array(region.buffer, HEADER_SIZE, capacity / 4);
  }
}

/** Writes the header of a region we created (we are its reader). */
export function initHeader(region: NativeRegion, capacity: number): void {
  region.store(OFFSET.magic, MAGIC);
  region.store(OFFSET.version, VERSION);
  region.store(OFFSET.headerSize, HEADER_SIZE);
  region.store(OFFSET.capacity, capacity);
  region.store(OFFSET.flags, 0);
}

/** Checks the header of the peer's region against its hello; throws layoutError. */
export function checkHeader(region: NativeRegion, capacity: number): void {
  if (region.load(OFFSET.magic) !== MAGIC) throw layoutError('bad magic in the header');
  if (region.load(OFFSET.version) !== VERSION) throw layoutError('a layout version other than 1');
  if (region.load(OFFSET.headerSize) !== HEADER_SIZE) throw layoutError('a header size other than 384');
  if (region.load(OFFSET.capacity) !== capacity) throw layoutError('a capacity other than its hello said');
  if (region.load(OFFSET.flags) !== 0) throw layoutError('unknown flags');
}

/** What RingReader.scan found. */
export interface Scan {
  /** [position, length] of each non-empty payload, in `data`. */
  readonly spans: number[];
  /** Payload bytes in all. */
  readonly bytes: number;
  /** Ring bytes the records take. */
  readonly consumed: number;
  readonly head: number;
  readonly inMessage: boolean;
}

/** The reading side of a ring in a region we created. */
export class RingReader extends RingView {
  #head = 0;
  #inMessage = false;
  readonly maxPiece: number;

  constructor(region: NativeRegion, capacity: number) {
    super(region, capacity);
    this.maxPiece = capacity / 2 - RECORD_HEADER;
  }

  /** Whether a message was begun and not finished. */
  get inMessage(): boolean {
    return this.#inMessage;
  }

  /** Bytes published and not consumed (checked). */
  available(): number {
    const tail = this.region.load(OFFSET.tail);
    const available = (tail - this.#head) >>> 0;
    if (available > this.capacity || available % 8 !== 0) throw layoutError(`tail ${tail} is not within the ring of head ${this.#head}`);
    return available;
  }

  /**
   * Checks the records published (up to about `limit` bytes of the ring; at least one record),
   * and returns where their payloads are: `spans` holds [position, length] pairs within `data`.
   * Nothing is consumed until {@link RingReader.release}: copy the payloads out first.
   */
  scan(limit: number): Scan {
    const available = this.available();
    const { capacity, words } = this;
    const spans: number[] = [];
    let head = this.#head;
    let consumed = 0;
    let bytes = 0;
    let inMessage = this.#inMessage;
    while (consumed < available) {
      const left = available - consumed;
      const position = head & (capacity - 1);
      const length = words[position >>> 2]!; // read once
      const kind = words[(position >>> 2) + 1]!; // read once
      let size: number;
      if (kind === KIND.padding) {
        if (length !== capacity - position - RECORD_HEADER) throw layoutError(`a padding record of length ${length} at ${position}`);
        size = capacity - position;
        if (size > left) throw layoutError('a padding record past the tail');
      } else {
        if (kind < KIND.whole || kind > KIND.last) throw layoutError(`a record of kind ${kind}`);
        if (length > this.maxPiece) throw layoutError(`a record of length ${length} (at most ${this.maxPiece})`);
        size = RECORD_HEADER + align8(length);
        if (position + size > capacity) throw layoutError(`a record crossing the ring's end at ${position}`);
        if (size > left) throw layoutError('a record past the tail');
        if (consumed > 0 && consumed + size > limit) break;
        const starts = kind === KIND.whole || kind === KIND.first;
        if (starts === inMessage) throw layoutError(inMessage ? 'a message begun inside another' : 'a piece outside any message');
        inMessage = kind === KIND.first || kind === KIND.middle;
        if (length > 0) spans.push(position + RECORD_HEADER, length);
        bytes += length;
      }
      head = (head + size) >>> 0;
      consumed += size;
    }
    return { spans, bytes, consumed, head, inMessage };
  }

  /** Consumes what `scan` returned (its payloads copied out): publishes the head. Returns whether the writer waits for space (ring its doorbell). */
  release(scan: Scan): boolean {
    if (scan.consumed === 0) return false;
    this.#head = scan.head;
    this.#inMessage = scan.inMessage;
    return this.region.publish(OFFSET.head, scan.head, OFFSET.writerWaiting);
  }

  /** Sets the reader-waiting flag; false if records came meanwhile (read on instead of sleeping). */
  sleep(): boolean {
    return this.region.sleep(OFFSET.readerWaiting, OFFSET.tail, this.#head);
  }

  /**
   * Spins up to `ns` nanoseconds for records to come: true if they did (read on instead of
   * sleeping). Our waiting flag is cleared first: a writer that publishes meanwhile need not ring.
   */
  spin(ns: number): boolean {
    this.region.store(OFFSET.readerWaiting, 0);
    return this.region.spin(OFFSET.tail, this.#head, ns);
  }

  /** The writer's state word, as it is (check it). */
  writerState(): number {
    return this.region.load(OFFSET.writerState);
  }
}

/** The writing side of a ring in the peer's region. */
export class RingWriter extends RingView {
  #tail = 0;
  #published = 0;
  #head = 0;
  /** Where a reserved record starts, or -1. */
  #reserved = -1;
  readonly maxPiece: number;

  constructor(region: NativeRegion, capacity: number) {
    super(region, capacity);
    this.maxPiece = capacity / 2 - RECORD_HEADER;
  }

  /** Free bytes, from the head the reader published (checked). */
  free(): number {
    const head = this.region.load(OFFSET.head);
    const used = (this.#tail - head) >>> 0;
    if (used > this.capacity || used % 8 !== 0) throw layoutError(`head ${head} is not within the ring of tail ${this.#tail}`);
    this.#head = head;
    return this.capacity - used;
  }

  /**
   * Writes as much of the message (`chunks`, `total` bytes, from `offset`) as fits, as records of
   * the right kinds, moving `offset`. Returns true once all of it is in. Does not publish.
   */
  write(message: { chunks: readonly Uint8Array[]; total: number; offset: number }): boolean {
    const { capacity, data, words } = this;
    const { chunks, total } = message;
    let free = this.free();
    for (;;) {
      const offset = message.offset;
      const position = this.#tail & (capacity - 1);
      const toEnd = capacity - position;
      let length = Math.min(total - offset, this.maxPiece);
      if (RECORD_HEADER + align8(length) > toEnd) {
        if (toEnd - RECORD_HEADER >= MIN_SPLIT && length > toEnd - RECORD_HEADER) length = toEnd - RECORD_HEADER;
        else {
          if (free < toEnd) return false;
          words[position >>> 2] = toEnd - RECORD_HEADER;
          words[(position >>> 2) + 1] = KIND.padding;
          this.#tail = (this.#tail + toEnd) >>> 0;
          free -= toEnd;
          continue;
        }
      }
      if (RECORD_HEADER + align8(length) > free) {
        const fits = (free - RECORD_HEADER) & ~7;
        if (fits < MIN_SPLIT || fits >= length) return false;
        length = fits;
      }
      const first = offset === 0;
      const last = offset + length === total;
      words[position >>> 2] = length;
      words[(position >>> 2) + 1] = first && last ? KIND.whole : first ? KIND.first : last ? KIND.last : KIND.middle;
      copyOut(chunks, offset, data, position + RECORD_HEADER, length);
      const size = RECORD_HEADER + align8(length);
      this.#tail = (this.#tail + size) >>> 0;
      free -= size;
      message.offset = offset + length;
      if (last) return true;
    }
  }

  /**
   * Reserves one whole record of `bytes` (at most maxPiece) in one piece, after a padding record
   * if it does not fit before the ring's end: its payload's view, to fill before commit(); null
   * while the ring has no room for it. Nothing is published.
   */
  reserve(bytes: number): Uint8Array | null {
    const { capacity, words } = this;
    const size = RECORD_HEADER + align8(bytes);
    let free = this.free();
    let position = this.#tail & (capacity - 1);
    const toEnd = capacity - position;
    if (size > toEnd) {
      if (free < toEnd + size) return null;
      words[position >>> 2] = toEnd - RECORD_HEADER;
      words[(position >>> 2) + 1] = KIND.padding;
      this.#tail = (this.#tail + toEnd) >>> 0;
      free -= toEnd;
      position = 0;
    } else if (size > free) return null;
    this.#reserved = position;
    return this.data.subarray(position + RECORD_HEADER, position + RECORD_HEADER + bytes);
  }

  /** Ends the reservation as a whole record of its first `bytes` (at most those reserved). Does not publish. */
  commit(bytes: number): void {
    const position = this.#reserved;
    this.#reserved = -1;
    this.words[position >>> 2] = bytes;
    this.words[(position >>> 2) + 1] = KIND.whole;
    this.#tail = (this.#tail + RECORD_HEADER + align8(bytes)) >>> 0;
  }

  /** Drops the reservation: nothing of it is written. */
  cancel(): void {
    this.#reserved = -1;
  }

  /** Publishes the tail (if it moved); true if the reader sleeps and its doorbell must ring. */
  publish(): boolean {
    if (this.#tail === this.#published) return false;
    this.#published = this.#tail;
    return this.region.publish(OFFSET.tail, this.#tail, OFFSET.readerWaiting);
  }

  /** Sets the writer-waiting flag; false if space was freed meanwhile (write on instead). */
  sleep(): boolean {
    return this.region.sleep(OFFSET.writerWaiting, OFFSET.head, this.#head);
  }

  /** Marks the end of what we write (after the last publish). */
  end(): void {
    this.region.store(OFFSET.writerState, STATE.ended);
  }

  /** The reader's state: true when it has gone (anything but open). */
  readerGone(): boolean {
    return this.region.load(OFFSET.readerState) !== STATE.open;
  }
}

/** Copies `length` bytes of the concatenation of `chunks`, from `offset`, to `target` at `at`. */
function copyOut(chunks: readonly Uint8Array[], offset: number, target: Uint8Array, at: number, length: number): void {
  if (length === 0) return;
  let i = 0;
  while (offset >= chunks[i]!.byteLength) offset -= chunks[i++]!.byteLength;
  while (length > 0) {
    const chunk = chunks[i++]!;
    const n = Math.min(chunk.byteLength - offset, length);
    target.set(n === chunk.byteLength ? chunk : chunk.subarray(offset, offset + n), at);
    at += n;
    length -= n;
    offset = 0;
  }
}
