/**
 * The pipe ends' transport under Bun. Bun's net.Socket does not work over a pipe or FIFO
 * descriptor (Bun 1.4: `new net.Socket({ fd })` reports fd -1 and never reads), and its fs streams
 * fail with EAGAIN on a non-blocking pipe that is empty (reading) or full (writing). Bun's own file
 * streams (`Bun.file(fd).stream()` and `.writer()`) wait for readiness on Bun's event loop. So under
 * Bun each end stays a net.Socket (the same class, events and stream API) whose bytes move through
 * those. They are made on the first read or write, so an end handed to a child has read nothing
 * ahead. Bun reads and writes through close-on-exec duplicates of the descriptor, which it closes
 * at end of stream (reading) or end() (writing); the end closes its own descriptor once Bun has no
 * operation under way. Known limit: a receiver destroyed before end of stream leaves Bun's
 * duplicate open until Bun lets it go (a writer then sees no EPIPE meanwhile).
 * Under Node and Deno, net.Socket owns the descriptor itself (libuv's pipe) and none of this is used.
 */
import type net from 'node:net';
import { requireNative } from '../native/addon.js';
import { closeFdQuietly } from '../native/fds.js';

/** Where `onChunk` reads go: one reused buffer and the user's callback (see ReceiverOptions). */
export interface ChunkSink {
  readonly buffer: Buffer;
  /** Hands over `nread` bytes at the start of `buffer`; false: stop reading until resume(). */
  callback(nread: number): boolean;
}

/** What an end asks of its transport. */
export interface Transport {
  /** Bytes held inside the transport, which the socket's own counts miss. */
  buffered(): number;
  /** onChunk mode: stop reading (pause()) and go on (resume()). */
  pause(): void;
  resume(): void;
}

/** The parts of Bun's API used here (Bun's types are not a dependency of this package). */
interface BunFile {
  stream(): ReadableStream<Uint8Array>;
  writer(): { write(chunk: Uint8Array): number | Promise<number>; flush(): number | Promise<number>; end(): number | Promise<number> };
}
function bunFile(fd: number): BunFile {
  // Bun's file streams wait for readiness only on a non-blocking descriptor; an inherited end is
  // blocking (spawnWith() makes it so for the child). libuv does the same when Node adopts one.
  requireNative('Pipe ends under Bun').setNonblocking(fd, true);
  return (globalThis as unknown as { Bun: { file(fd: number): BunFile } }).Bun.file(fd);
}

type Callback = (error?: Error | null) => void;
/** The stream hooks of net.Socket that the transport replaces on the instance. */
interface Hooks {
  _read(size: number): void;
  _write(chunk: Buffer, encoding: BufferEncoding, callback: Callback): void;
  _writev(chunks: Array<{ chunk: Buffer }>, callback: Callback): void;
  _final(callback: Callback): void;
  _destroy(error: Error | null, callback: Callback): void;
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/**
 * net.Socket is made with emitClose false and emits 'close' itself once its handle is closed (in
 * the loop's close phase, after 'error'): so do we, a turn of the loop later.
 */
function closed(socket: net.Socket, error: Error | null, callback: Callback): void {
  callback(error);
  setImmediate(() => socket.emit('close', error != null));
}

/** Makes `socket` a receiver reading `fd` (into `sink` if given, else through push()). */
export function readThroughBun(socket: net.Socket, fd: number, sink: ChunkSink | undefined): Transport {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let pumping: Promise<void> | undefined;
  let pending: Buffer | null = null; // onChunk: the rest of a chunk after a callback returned false
  let paused = false; // stop pulling: push() said so, or onChunk returned false, or pause()
  let done = false;
  // onChunk mode: copy into the user's buffer, one buffer-full per callback; keep the rest on false.
  const deliver = (chunk: Buffer): boolean => {
    const { buffer } = sink!;
    let offset = 0;
    while (offset < chunk.length) {
      const n = chunk.copy(buffer, 0, offset, offset + buffer.length);
      offset += n;
      if (!sink!.callback(n) || socket.destroyed) {
        pending = offset < chunk.length ? chunk.subarray(offset) : null;
        return false;
      }
    }
    return true;
  };
  const pump = async () => {
    reader ??= bunFile(fd).stream().getReader();
    while (!paused && !done) {
      const { value, done: ended } = await reader.read();
      if (socket.destroyed) return;
      if (ended) {
        done = true;
        socket.push(null);
        if (sink) socket.read(0); // nothing is buffered: this emits 'end'
        return;
      }
      const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      if (sink ? !deliver(chunk) : !socket.push(chunk)) paused = true;
    }
  };
  const start = () => {
    if (pumping || done || socket.destroyed) return;
    pumping = pump()
      .catch((error: unknown) => void socket.destroy(asError(error)))
      .finally(() => {
        pumping = undefined;
        if (!paused) start(); // a _read() or resume() that came while the loop was leaving
      });
  };
  const hooks: Partial<Hooks> = {
    _read: () => {
      if (sink) return; // onChunk: pause() and resume() drive it
      paused = false;
      start();
    },
    _destroy: (error, callback) => {
      done = true;
      if (!reader) {
        // Never read: closed at once, as Node closes (a writer then sees EPIPE right away).
        closeFdQuietly(fd);
        closed(socket, error, callback);
        return;
      }
      // Cancelling settles a pending read (as end of stream); then no read of Bun's is under way.
      void Promise.all([reader.cancel().catch(() => {}), pumping]).then(() => {
        closeFdQuietly(fd);
        closed(socket, error, callback);
      });
    },
  };
  Object.assign(socket, hooks);
  // Node's net.Socket ends a read-only socket once it has ended (autoDestroy); Bun's does not.
  socket.once('end', () => socket.destroy());
  const transport: Transport = {
    buffered: () => pending?.length ?? 0,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      if (pending) {
        const rest = pending;
        pending = null;
        if (!deliver(rest)) {
          paused = true;
          return;
        }
      }
      start();
    },
  };
  if (sink) transport.resume(); // onChunk: reading starts at once
  return transport;
}

/** Makes `socket` a sender writing `fd`, one write under way at a time (the stream queues the rest). */
export function writeThroughBun(socket: net.Socket, fd: number): Transport {
  let writer: ReturnType<BunFile['writer']> | undefined;
  let inFlight: Promise<void> | undefined;
  const write = (chunk: Buffer, callback: Callback) => {
    writer ??= bunFile(fd).writer();
    const sink = writer;
    const written = (async () => {
      await sink.write(chunk);
      await sink.flush(); // resolves once the bytes are in the pipe: that is our backpressure
    })();
    const settled: Promise<void> = written.catch(() => {}).then(() => {
      if (inFlight === settled) inFlight = undefined;
    });
    inFlight = settled;
    written.then(
      () => callback(null),
      (error: unknown) => callback(asError(error)),
    );
  };
  const hooks: Partial<Hooks> = {
    _write: (chunk, _encoding, callback) => write(chunk, callback),
    _writev: (chunks, callback) => write(Buffer.concat(chunks.map(({ chunk }) => chunk)), callback),
    // Every write has completed before _final. Bun writes through a duplicate of the descriptor
    // (close-on-exec), which only end() closes: until then the receiver would see no end of stream.
    _final: (callback) => {
      if (!writer) return callback();
      const sink = writer;
      writer = undefined;
      Promise.resolve(sink.end()).then(
        () => callback(),
        (error: unknown) => callback(asError(error)),
      );
    },
    _destroy: (error, callback) => {
      if (!inFlight && writer) inFlight = Promise.resolve(); // still end Bun's duplicate first
      if (!inFlight) {
        closeFdQuietly(fd);
        closed(socket, error, callback);
        return;
      }
      const sink = writer;
      writer = undefined;
      void inFlight.then(() => (sink ? Promise.resolve(sink.end()).catch(() => {}) : undefined)).then(() => {
        closeFdQuietly(fd);
        closed(socket, error, callback);
      });
    },
  };
  Object.assign(socket, hooks);
  // Node's net.Socket closes a write-only socket once its writes are done; Bun's does not.
  socket.once('finish', () => socket.destroy());
  return { buffered: () => 0, pause() {}, resume() {} };
}
