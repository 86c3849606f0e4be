/**
 * What a Channel needs of its byte stream, both ways (Transport), and the transport over Node
 * streams: a Duplex, or a readable and a writable (StreamTransport). The one over a Unix stream
 * socket of ours, which also carries descriptors, is in unix-transport.ts.
 */
import { Socket } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { ReceivedDescriptor } from '../unix-socket/descriptors.js';

/** What the channel needs of its byte stream, both ways. */
export interface Transport {
  /** Whether descriptors can go with the bytes. */
  readonly passesFds: boolean;
  /**
   * Whether a write's `done` means the stream holds its chunks no more (the OS has a copy), so
   * their memory can be written again (see buffers.ts). Absent: false (a Duplex may pass the
   * very chunks on to its reader, as a PassThrough does).
   */
  readonly writesCopied?: boolean;
  /** Writes whole frames; with `fds`, the chunks are exactly one frame. `done` once the OS has them. */
  write(chunks: Uint8Array[], fds: Int32Array | null, done: (error?: unknown) => void): void;
  /** The stream is full: wait for onDrain before writing more. */
  readonly full: boolean;
  /** Ends our side, after everything written. */
  end(done: () => void): void;
  /** Stops reading (what was read ahead may still come from a UnixSocket's inbox: see UnixTransport). */
  pause(): void;
  resume(): void;
  /** The reading side is gone (destroyed, closed). */
  readonly gone: boolean;
  destroy(): void;
  /** Whether the stream holds the event loop open (where it can say: net.Socket, our sockets). */
  ref(keepAlive: boolean): void;
  /**
   * Zero-copy writes (the shared-memory transport): queues, after every write before it, a
   * reservation of `bytes` contiguous bytes to be written in place. `granted` gets a view of them
   * once they are free (the writes after it wait); commit() or cancel() ends it, and `done` is
   * called as for a write. Returns false, calling nothing, when it cannot hold `bytes` in one piece.
   */
  reserve?(bytes: number, granted: (view: Uint8Array) => void, done: (error?: unknown) => void): boolean;
  /** Publishes the first `bytes` of the granted reservation as one write. */
  commit?(bytes: number): void;
  /** Drops the granted (or still queued) reservation: nothing of it is written. */
  cancel?(): void;
}

/** What a transport reports to its channel. */
export interface TransportEvents {
  data(chunk: Buffer, fds: ReceivedDescriptor[] | null): void;
  end(): void;
  error(error: unknown): void;
  gone(): void;
  drain(): void;
}

/** ref()s or unref()s a stream that can (net.Socket and its kin); other streams hold nothing. */
function refStream(stream: Readable | Writable, keepAlive: boolean): void {
  const handle = stream as { ref?: () => unknown; unref?: () => unknown };
  if (keepAlive) {
    if (typeof handle.ref === 'function') handle.ref();
  } else if (typeof handle.unref === 'function') handle.unref();
}

/** Node streams: a Duplex, or a readable and a writable. */
export class StreamTransport implements Transport {
  readonly passesFds = false;
  readonly writesCopied: boolean;
  readonly #readable: Readable;
  readonly #writable: Writable;
  readonly #duplex: boolean;

  constructor(readable: Readable, writable: Writable, events: TransportEvents) {
    this.#readable = readable;
    this.#writable = writable;
    this.#duplex = (readable as unknown) === writable;
    // A net.Socket (local sockets, pipe ends) writes to its handle: libuv calls back once the
    // kernel has every byte. Any other Writable may keep the chunks after its callback.
    this.writesCopied = writable instanceof Socket;
    // The channel decides when to end our side (after its own queue), not the stream.
    if (this.#duplex) (readable as Duplex).allowHalfOpen = true;
    readable.on('data', (chunk: Buffer) => events.data(chunk, null));
    readable.on('end', () => events.end());
    readable.on('error', (error) => events.error(error));
    if (!this.#duplex) writable.on('error', (error) => events.error(error));
    readable.on('close', () => events.gone());
    writable.on('drain', () => events.drain());
  }

  write(chunks: Uint8Array[], _fds: Int32Array | null, done: (error?: unknown) => void): void {
    const writable = this.#writable;
    const last = chunks.length - 1;
    if (last === 0) {
      writable.write(chunks[0], done);
      return;
    }
    writable.cork(); // one writev
    for (let i = 0; i < last; i++) writable.write(chunks[i]);
    writable.write(chunks[last], done);
    writable.uncork();
  }

  get full(): boolean {
    return this.#writable.writableNeedDrain;
  }

  end(done: () => void): void {
    this.#writable.end(done);
  }

  pause(): void {
    this.#readable.pause();
  }

  resume(): void {
    this.#readable.resume();
  }

  get gone(): boolean {
    return this.#readable.destroyed;
  }

  destroy(): void {
    this.#readable.destroy();
    if (!this.#duplex) this.#writable.destroy();
  }

  ref(keepAlive: boolean): void {
    refStream(this.#readable, keepAlive);
    if (!this.#duplex) refStream(this.#writable, keepAlive);
  }
}
