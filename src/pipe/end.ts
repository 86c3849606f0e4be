/**
 * The two ends of a pipe as Node streams. Each is a `net.Socket` over the descriptor (Node's own
 * libuv stream: non-blocking on the event loop, with backpressure), restricted to its direction,
 * plus what Node lacks: synchronous reads and writes, blocking mode, and taking the descriptor out.
 * FIFO ends are the same types.
 */
import net from 'node:net';
import { InterprocessError, invalidArgument, invalidType } from '../errors.js';
import { requireNative } from '../native/addon.js';
import { releaseFd } from '../native/fds.js';
import { isWindows, runtime } from '../platform.js';
import { descriptorOf } from '../unix-socket/descriptor-symbol.js';
import { type ChunkSink, type Transport, readThroughBun, writeThroughBun } from './bun-transport.js';
import { type SyncOptions, adoptFd, checkSyncOptions, readFdSync, writeFdSync } from './sync-io.js';

export type { SyncOptions } from './sync-io.js';

/** What both ends share. */
abstract class PipeEnd extends net.Socket {
  // The descriptor this end was made with. Node's own count (the handle's fd) is Node's internals,
  // absent under Bun's fs transport and -1 for Windows pipes, so the end keeps its own.
  readonly #fd: number;
  /** @internal Under Bun: what moves the bytes (see bun-transport.ts); else undefined. */
  protected transport: Transport | undefined;

  /** @internal */
  constructor(options: net.SocketConstructorOpts & { fd: number }) {
    // Under Bun the socket gets no descriptor: the transport (set by the subclass) owns it.
    if (runtime === 'bun') {
      const { fd: _fd, onread: _onread, manualStart: _manualStart, ...rest } = options as net.SocketConstructorOpts & { fd: number; onread?: unknown; manualStart?: boolean };
      super(rest);
    } else {
      super(options);
    }
    this.#fd = options.fd;
  }

  /** The descriptor, while this end owns it (-1 once closed or taken out). */
  get fd(): number {
    return this.destroyed ? -1 : this.#fd;
  }

  /** For spawnWith() and UnixSocket.send(): the descriptor, or ERR_SOCKET_CLOSED. */
  [descriptorOf](): number {
    return this.ownFd();
  }

  /** @internal The descriptor, or ERR_SOCKET_CLOSED. */
  protected ownFd(): number {
    const fd = this.fd;
    if (fd < 0) throw new InterprocessError('ERR_SOCKET_CLOSED', 'This pipe end is closed (or its descriptor was taken out).');
    return fd;
  }

  /**
   * Puts the descriptor in blocking (true) or non-blocking (false) mode. The mode belongs to the
   * open pipe, shared with every process holding it: make an end blocking before handing its
   * descriptor to a program that expects ordinary blocking I/O (spawnWith() does this), not while
   * reading from it through this stream.
   */
  setBlocking(blocking: boolean): this {
    if (typeof blocking !== 'boolean') throw invalidType('blocking', 'a boolean', blocking);
    const fd = this.ownFd();
    // Windows: blocking is a property of each call there, not of the pipe; nothing to set.
    if (!isWindows) requireNative('setBlocking').setNonblocking(fd, !blocking);
    return this;
  }

  /**
   * Takes the descriptor out: returns a descriptor (close-on-exec) for the same pipe, which the
   * caller now owns and must close, and closes this stream. Fails if data is still buffered in
   * the stream, so none is lost. The number differs from `fd` (it is a duplicate).
   */
  intoFd(): number {
    const fd = this.ownFd();
    const buffered = this.readableLength + this.writableLength + (this.transport?.buffered() ?? 0);
    if (buffered > 0) {
      throw new InterprocessError('ERR_INVALID_STATE', `Cannot take the descriptor out: ${buffered} bytes are still buffered in the stream. Read them, or wait for 'drain', first.`);
    }
    const native = requireNative('intoFd');
    const copy = isWindows ? native.namedPipe.dupFd(fd) : native.dupCloexec(fd);
    this.destroy();
    releaseFd(copy); // the caller's now (until here the addon's registry held it: see native/fds.ts)
    return copy;
  }
}

/** Node's read size on a stream: also the default of {@link ReceiverOptions.readBuffer}. */
const DEFAULT_READ_BUFFER = 64 * 1024;

/**
 * Options of a receiver: {@link PipeReceiver.fromFd}, `pipe({ receiver })` and
 * `openFifoReader()`. Without `onChunk` the receiver is an ordinary Readable stream.
 */
export interface ReceiverOptions {
  /**
   * Read into one buffer, reused for every read, and hand each chunk to this callback instead of
   * the stream's `'data'` events (which get a fresh Buffer per read). This is the fast path for
   * bulk data: a pipe nearly always fills the read buffer, and a fresh 64 KiB Buffer per read
   * costs allocation, page faults and garbage collection (see docs/pipes.md).
   *
   * `chunk` is a view of the reused buffer: **valid only until the callback returns** (the next
   * read overwrites it), or, if the callback returns `false`, until `resume()`. Copy what you
   * keep (`Buffer.from(chunk)`), or parse it in place.
   *
   * Reading starts at once. Return `false` (or call `pause()`) to stop reading, `resume()` to go
   * on: the pipe then fills and holds the writer back. `'end'`, `'close'` and `'error'` are
   * emitted as usual; `'data'` never is, and `read()` returns null. If the callback throws, the
   * receiver is destroyed with that error (emitted as `'error'`).
   */
  onChunk?: (chunk: Buffer) => boolean | void;
  /**
   * With `onChunk`: the buffer to read into (a Uint8Array, used as is), or its size in bytes.
   * Default 64 KiB, as Node's streams read. One `read()` returns at most this much: a larger
   * buffer on a larger pipe means fewer reads and callbacks.
   */
  readBuffer?: Uint8Array | number;
}

/**
 * Checks receiver options; returns the reused buffer and callback for them (net.Socket's `onread`
 * option, or the transport's sink under Bun), or undefined.
 */
function onreadOption(options: ReceiverOptions, destroy: (error: unknown) => void): ChunkSink | undefined {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { onChunk, readBuffer } = options;
  if (onChunk === undefined) {
    if (readBuffer !== undefined) throw invalidArgument('options.readBuffer', 'is used only with options.onChunk');
    return undefined;
  }
  if (typeof onChunk !== 'function') throw invalidType('options.onChunk', 'a function', onChunk);
  let buffer: Buffer;
  if (readBuffer === undefined) {
    buffer = Buffer.allocUnsafe(DEFAULT_READ_BUFFER);
  } else if (typeof readBuffer === 'number') {
    if (!Number.isInteger(readBuffer) || readBuffer <= 0 || readBuffer > 0x7fffffff) {
      throw invalidArgument('options.readBuffer', `must be a positive integer number of bytes (below 2 GiB) or a Uint8Array; got ${readBuffer}`);
    }
    buffer = Buffer.allocUnsafe(readBuffer);
  } else if (readBuffer instanceof Uint8Array && readBuffer.byteLength > 0) {
    buffer = Buffer.from(readBuffer.buffer, readBuffer.byteOffset, readBuffer.byteLength);
  } else {
    throw invalidType('options.readBuffer', 'a non-empty Uint8Array or a number of bytes', readBuffer);
  }
  return {
    buffer,
    // Node calls back with the byte count and the whole buffer; hand out the part just read.
    callback(nread: number): boolean {
      try {
        return onChunk(buffer.subarray(0, nread)) !== false;
      } catch (error) {
        destroy(error);
        return false;
      }
    },
  };
}

/**
 * The receiving end of a pipe or FIFO: a Readable stream (a `net.Socket` that only reads), or,
 * with {@link ReceiverOptions.onChunk}, a reader into one reused buffer.
 */
export class PipeReceiver extends PipeEnd {
  /** @internal Use pipe(), openFifoReader() or PipeReceiver.fromFd(). */
  constructor(fd: number, options: ReceiverOptions = {}) {
    let self: PipeReceiver | undefined;
    const onread = onreadOption(options, (error) => self?.destroy(error as Error));
    // manualStart: read nothing until the user does, so an end handed to a child loses nothing.
    // With onChunk the callback is the reader: start at once (below).
    super({ fd, readable: true, writable: false, manualStart: true, ...(onread ? { onread } : {}) } as net.SocketConstructorOpts & { fd: number });
    self = this;
    if (runtime === 'bun') {
      // onChunk reads start at once there too (readThroughBun).
      this.transport = readThroughBun(this, fd, onread);
      return;
    }
    // read(0) starts the handle reading (Node's _read) without switching the stream to flowing
    // mode, whose deferred resume would undo a pause() made right after construction.
    if (onread) this.read(0);
  }

  /** Stops reading (with `onChunk`: no more callbacks until {@link resume}). */
  override pause(): this {
    this.transport?.pause();
    return super.pause();
  }

  /** Goes on reading (with `onChunk`: after a callback returned false, or after {@link pause}). */
  override resume(): this {
    this.transport?.resume();
    return super.resume();
  }

  /**
   * Wraps an inherited or existing pipe, FIFO or socket descriptor; the stream then owns it.
   * `options.onChunk` reads into a reused buffer instead of streaming (see {@link ReceiverOptions}).
   */
  static fromFd(fd: number, options: ReceiverOptions = {}): PipeReceiver {
    adoptFd(fd, 'a pipe receiver');
    return new PipeReceiver(fd, options);
  }

  /**
   * Reads synchronously into `buffer`, blocking this thread until at least one byte arrives.
   * Returns the number of bytes read; 0 means end of stream (every sender closed). Data already
   * buffered in the stream comes first. Do not mix with reading through the stream.
   */
  readSync(buffer: NodeJS.ArrayBufferView, options: SyncOptions = {}): number {
    if (!ArrayBuffer.isView(buffer)) throw invalidType('buffer', 'a Buffer, TypedArray or DataView', buffer);
    checkSyncOptions(options, 'readSync');
    const target = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    if (this.readableLength > 0) {
      const chunk = this.read(Math.min(target.length, this.readableLength)) as Buffer | null;
      if (chunk) return chunk.copy(target);
    }
    return readFdSync(this.ownFd(), target, options);
  }
}

/** The sending end of a pipe or FIFO: a Writable stream (a `net.Socket` that only writes). */
export class PipeSender extends PipeEnd {
  /** @internal Use pipe(), openFifoWriter() or PipeSender.fromFd(). */
  constructor(fd: number) {
    super({ fd, readable: false, writable: true });
    if (runtime === 'bun') this.transport = writeThroughBun(this, fd);
  }

  /** Wraps an inherited or existing pipe, FIFO or socket descriptor; the stream then owns it. */
  static fromFd(fd: number): PipeSender {
    adoptFd(fd, 'a pipe sender');
    return new PipeSender(fd);
  }

  /**
   * Writes all of `data` synchronously, blocking this thread while the pipe is full. Returns the
   * byte count. Fails with ERR_INVALID_STATE while asynchronous writes are still queued (they
   * would come after), with EPIPE when no receiver is left.
   */
  writeSync(data: string | NodeJS.ArrayBufferView, options: SyncOptions = {}): number {
    const bytes = typeof data === 'string' ? Buffer.from(data) : ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : null;
    if (bytes === null) throw invalidType('data', 'a string, Buffer, TypedArray or DataView', data);
    checkSyncOptions(options, 'writeSync');
    if (this.writableLength > 0) {
      throw new InterprocessError('ERR_INVALID_STATE', `writeSync would overtake ${this.writableLength} bytes still queued by write(); wait for 'drain' first.`);
    }
    return writeFdSync(this.ownFd(), bytes, options);
  }
}
