/**
 * A Channel's transport through shared memory (docs/shared-memory.md): `new Channel(socket,
 * { transport: 'shared-memory' })` on a Unix stream socket of ours. Each side makes the region it
 * reads from and its doorbell, sends both over the socket (SCM_RIGHTS) with a hello, maps the
 * peer's, then moves frames through the rings; the socket then only tells that the peer is gone.
 *
 * The Channel's frames are a byte stream: each write() becomes one ring message (pieces if it is
 * larger than a piece), and the reader hands the pieces on as they come (the Channel's frame
 * reader bounds messages by maxMessageSize), so this side never reassembles, and holds no more
 * than one lap of the ring per wakeup.
 */
import { InterprocessError, fromSystemError, invalidArgument, unsupported } from '../errors.js';
import { type NativeWatcher, requireNative } from '../native/addon.js';
import { received } from '../channel/buffers.js';
import { closeFdQuietly } from '../native/fds.js';
import type { Transport, TransportEvents } from '../channel/transport.js';
import type { ReceivedDescriptor } from '../unix-socket/descriptors.js';
import type { UnixSocket } from '../unix-socket/socket.js';
import type { UnixMessage } from '../unix-socket/types.js';
import { HEADER_SIZE, MAGIC, OFFSET, MAX_CAPACITY, MIN_CAPACITY, type NativeRegion, RingReader, RingWriter, STATE, VERSION, checkHeader, initHeader, layoutError } from './ring.js';

/** The native part (native/unix/shm.c). */
export interface NativeSharedMemory {
  create(size: number): [number, number, number];
  map(fd: number, size: number): NativeRegion;
  ring(fd: number): void;
  drain(fd: number): void;
}

/** The default ring size: the bytes of the ring each side reads from. */
export const DEFAULT_RING_SIZE = 4 * 1024 * 1024;
const HELLO_SIZE = 16;
// Bytes one wakeup reads before yielding to the event loop (a flooding peer cannot hold it).
const READ_PER_TURN = 16 * 1024 * 1024;
// Bytes handed to the channel at once, as a socket read would (its frame reader parses each chunk
// up to where flow control holds it, and holds the rest: a chunk of many MiB of small frames would
// be scanned again at each resume).
const CHUNK = 64 * 1024;
/** The longest spin: 1 ms of a CPU and of the event loop, each time the channel falls idle. */
const MAX_SPIN_US = 1000;

/** Checks a spin option (microseconds); returns nanoseconds. */
export function spinOf(value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_SPIN_US)) {
    throw invalidArgument('options.spin', `must be a number of microseconds from 0 to ${MAX_SPIN_US}; got ${String(value)}`);
  }
  return Math.round(value * 1000);
}

/** Checks a ring size option. */
export function ringSizeOf(value: unknown): number {
  if (value === undefined) return DEFAULT_RING_SIZE;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_CAPACITY || value > MAX_CAPACITY || (value & (value - 1)) !== 0) {
    throw invalidArgument('options.ringSize', `must be a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY} (bytes); got ${String(value)}`);
  }
  return value;
}

/** The native part; on Windows, ERR_INTERPROCESS_UNSUPPORTED saying what to use instead. */
export function nativeSharedMemory(): NativeSharedMemory {
  if (process.platform === 'win32') {
    throw unsupported(
      'A shared-memory channel',
      "use the default transport (new Channel(stream)) over a named pipe or local socket; shared memory on Windows (CreateFileMapping) is not built yet",
    );
  }
  return (requireNative('A shared-memory channel') as unknown as { sharedMemory: NativeSharedMemory }).sharedMemory;
}

interface Pending {
  chunks: Uint8Array[];
  total: number;
  offset: number;
  done: (error?: unknown) => void;
  /** A reservation (Transport#reserve) instead of chunks: granted once its view is set. */
  reserve?: { bytes: number; granted: (view: Uint8Array) => void; view: Uint8Array | null };
}

/** The transport: set up over `socket`, then rings both ways. */
export class SharedMemoryTransport implements Transport {
  readonly passesFds = false;
  readonly #socket: UnixSocket;
  readonly #events: TransportEvents;
  readonly #native: NativeSharedMemory;
  readonly #capacity: number;
  /** Nanoseconds to spin before sleeping on the doorbell (0: never). */
  readonly #spinNs: number;
  #region: NativeRegion | null = null; // ours: we read from it
  #peerRegion: NativeRegion | null = null; // the peer's: we write into it
  #reader: RingReader | null = null;
  #writer: RingWriter | null = null;
  #doorbell: NativeWatcher | null = null;
  #peerDoorbell: ReceivedDescriptor | null = null;
  #myDoorbellWrite = -1;
  #memoryFd = -1;
  #hello: Buffer = Buffer.alloc(0);
  #queue: Pending[] = [];
  #queued = 0;
  #full = false;
  #paused = false;
  #ending: (() => void) | null = null;
  #ended = false; // our writer state is 'ended'
  #readEnded = false;
  #socketEnded = false;
  #destroyed = false;
  #scheduled = false;
  #writing = false;
  #doorbellRead = -1;
  readonly #onMessage = (message: UnixMessage): void => this.#onHello(message);

  constructor(socket: UnixSocket, events: TransportEvents, options: { ringSize?: number; spin?: number }) {
    if (socket.type !== 'stream') throw invalidArgument('stream', `is a ${socket.type} socket; a shared-memory channel is set up over a Unix stream socket`);
    this.#native = nativeSharedMemory();
    this.#capacity = ringSizeOf(options.ringSize);
    this.#spinNs = spinOf(options.spin);
    this.#socket = socket;
    this.#events = events;
    const [memoryFd, doorbellRead, doorbellWrite] = this.#native.create(HEADER_SIZE + this.#capacity);
    this.#memoryFd = memoryFd;
    this.#myDoorbellWrite = doorbellWrite;
    try {
      const region = this.#native.map(memoryFd, HEADER_SIZE + this.#capacity);
      this.#region = region;
      initHeader(region, this.#capacity);
      this.#reader = new RingReader(region, this.#capacity);
      const { Watcher, pollEvents } = requireNative('A shared-memory channel');
      this.#doorbell = new Watcher(doorbellRead, () => this.#onDoorbell(), true);
      this.#doorbellRead = doorbellRead;
      this.#doorbell.start(pollEvents.READABLE);
    } catch (error) {
      closeFdQuietly(doorbellRead);
      this.#release();
      throw error;
    }
    socket.on('message', this.#onMessage);
    socket.on('end', () => {
      this.#socketEnded = true;
      this.#schedule();
    });
    socket.on('error', (error) => this.#fail(fromSystemError(error, "The shared-memory channel's socket failed", 'The peer may have gone away.')));
    socket.on('close', () => {
      this.#socketEnded = true;
      this.#schedule();
    });
    const hello = Buffer.alloc(HELLO_SIZE);
    hello.writeUInt32LE(MAGIC, 0);
    hello.writeUInt32LE(VERSION, 4);
    hello.writeUInt32LE(HEADER_SIZE, 8);
    hello.writeUInt32LE(this.#capacity, 12);
    if (!isLittleEndian()) for (let i = 0; i < 16; i += 4) hello.writeUInt32BE(hello.readUInt32LE(i), i);
    socket.send(hello, { fds: [memoryFd, doorbellWrite] }).then(
      () => this.#afterHelloSent(),
      (error) => this.#fail(fromSystemError(error, 'Could not hand the shared memory to the peer', 'The peer may have gone away.')),
    );
  }

  #afterHelloSent(): void {
    // The peer has its own descriptors for them now.
    if (this.#memoryFd >= 0) closeFdQuietly(this.#memoryFd);
    if (this.#myDoorbellWrite >= 0) closeFdQuietly(this.#myDoorbellWrite);
    this.#memoryFd = this.#myDoorbellWrite = -1;
  }

  #onHello(message: UnixMessage): void {
    if (this.#writer !== null || this.#destroyed) {
      for (const fd of message.fds) fd.close();
      if (!this.#destroyed) this.#fail(layoutError('bytes on the socket after the hello'));
      return;
    }
    this.#hello = Buffer.concat([this.#hello, message.data]);
    const fds = message.fds;
    if (this.#hello.length > HELLO_SIZE || (fds.length > 0 && this.#hello.length < HELLO_SIZE) || (this.#hello.length === HELLO_SIZE && fds.length !== 2)) {
      for (const fd of fds) fd.close();
      this.#fail(layoutError('not a shared-memory hello on the socket (is the peer using transport: \'shared-memory\' too?)'));
      return;
    }
    if (this.#hello.length < HELLO_SIZE) return;
    const [memory, doorbell] = fds as [ReceivedDescriptor, ReceivedDescriptor];
    const read = (at: number) => (isLittleEndian() ? this.#hello.readUInt32LE(at) : this.#hello.readUInt32BE(at));
    try {
      if (read(0) !== MAGIC || read(4) !== VERSION || read(8) !== HEADER_SIZE) throw layoutError('a hello of another layout or version');
      const capacity = read(12);
      if (capacity < MIN_CAPACITY || capacity > MAX_CAPACITY || (capacity & (capacity - 1)) !== 0) throw layoutError(`a ring of ${capacity} bytes`);
      const region = this.#native.map(memory.fd, HEADER_SIZE + capacity);
      this.#peerRegion = region;
      checkHeader(region, capacity);
      this.#writer = new RingWriter(region, capacity);
      this.#peerDoorbell = doorbell;
    } catch (error) {
      doorbell.close();
      this.#fail(error);
      return;
    } finally {
      memory.close();
    }
    this.#schedule();
  }

  #onDoorbell(): void {
    if (this.#destroyed) return;
    try {
      this.#native.drain(this.#doorbellRead);
    } catch {
      /* the next turn says */
    }
    this.#turn();
  }

  #schedule(): void {
    if (this.#scheduled || this.#destroyed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#turn();
    });
  }

  /** One turn: write what is queued, read what came, then sleep (or go on next turn). */
  #turn(): void {
    if (this.#destroyed) return;
    try {
      const again = this.#writeTurn() || this.#readTurn();
      if (again) this.#schedule();
    } catch (error) {
      this.#fail(error);
    }
  }

  #ringPeer(): void {
    if (this.#peerDoorbell !== null && this.#peerDoorbell.fd >= 0) this.#native.ring(this.#peerDoorbell.fd);
  }

  /** Writes what is queued, as far as the ring takes it; sleeps on the doorbell when it is full. */
  #writeTurn(): false {
    const writer = this.#writer;
    if (this.#writing) return false;
    // Nothing queued can arrive once the peer is gone: before its hello (no writer yet) as after.
    if ((this.#queue.length > 0 || this.#ending !== null) && (this.#socketEnded || writer?.readerGone())) {
      throw new InterprocessError('EPIPE', 'The peer stopped reading the shared-memory channel (it closed, or found the ring broken)', { syscall: 'write' });
    }
    if (writer === null) return false;
    this.#writing = true;
    const finished: Array<(error?: unknown) => void> = [];
    let granted: Pending['reserve'] = undefined;
    try {
      for (;;) {
        let held = false;
        while (this.#queue.length > 0) {
          const head = this.#queue[0]!;
          const reserve = head.reserve;
          if (reserve !== undefined) {
            // A reservation holds the writes after it until it is committed or cancelled.
            if (reserve.view === null && (reserve.view = writer.reserve(reserve.bytes)) !== null) granted = reserve;
            held = reserve.view !== null;
            break;
          }
          if (!writer.write(head)) break;
          this.#queue.shift();
          this.#queued -= head.total;
          finished.push(head.done);
        }
        if (writer.publish()) this.#ringPeer();
        if (this.#queue.length === 0 || held) break;
        // The ring is full: sleep until the reader frees space, unless it did meanwhile.
        if (writer.sleep()) break;
      }
    } finally {
      this.#writing = false;
    }
    for (const done of finished) done();
    if (this.#destroyed) return false;
    granted?.granted(granted.view!);
    // With a spin, the reply is watched for from the next turn on (a read turn spins when idle).
    if (this.#spinNs > 0 && finished.length > 0) this.#schedule();
    if (this.#full && this.#queued < this.#capacity) {
      this.#full = false;
      this.#events.drain();
    }
    if (this.#queue.length === 0 && this.#ending !== null && !this.#ended) {
      this.#ended = true;
      writer.end();
      this.#ringPeer();
      const done = this.#ending;
      this.#ending = null;
      done();
    }
    return false;
  }

  /** Reads what came; returns true if another turn is needed at once (more than a turn's worth waits). */
  #readTurn(): boolean {
    const reader = this.#reader;
    if (reader === null || this.#paused || this.#readEnded) return false;
    let read = 0;
    for (;;) {
      const scan = reader.scan(CHUNK);
      if (scan.consumed > 0) {
        let chunk: Buffer | null = null;
        if (scan.bytes > 0) {
          // Copied out before the head moves past it: the writer may reuse the space at once.
          chunk = received(scan.bytes);
          const { spans } = scan;
          const data = reader.data;
          for (let i = 0, at = 0; i < spans.length; i += 2) {
            const position = spans[i]!;
            const length = spans[i + 1]!;
            chunk.set(data.subarray(position, position + length), at);
            at += length;
          }
        }
        if (reader.release(scan)) this.#ringPeer();
        read += scan.consumed;
        if (chunk !== null) this.#events.data(chunk, null);
        if (this.#destroyed || this.#paused) return false;
        if (read >= READ_PER_TURN) return true;
        continue;
      }
      // Nothing more: has the writer ended, or gone?
      const state = reader.writerState();
      if (state === STATE.failed) throw new InterprocessError('ECONNRESET', 'The peer of the shared-memory channel reported that it failed', { syscall: 'read' });
      if (state !== STATE.open && state !== STATE.ended) throw layoutError(`a writer state of ${state}`);
      if (state === STATE.ended || this.#socketEnded) {
        if (reader.available() > 0) continue;
        if (state !== STATE.ended && reader.inMessage) {
          throw new InterprocessError('ECONNRESET', 'The peer of the shared-memory channel went away in the middle of a message', { syscall: 'read' });
        }
        this.#readEnded = true;
        this.#events.end();
        // Nothing more will come: the channel closes once our side has ended too.
        if (this.#socketEnded || this.#ended) this.#events.gone();
        return false;
      }
      if (this.#spinNs > 0) {
        // Not before what the messages just delivered made the channel send (its sends leave at
        // the end of this tick): spin in a turn of its own.
        if (read > 0) return true;
        if (reader.spin(this.#spinNs)) continue;
      }
      if (reader.sleep()) return false;
    }
  }

  write(chunks: Uint8Array[], _fds: Int32Array | null, done: (error?: unknown) => void): void {
    let total = 0;
    for (const chunk of chunks) total += chunk.byteLength;
    this.#queue.push({ chunks, total, offset: 0, done });
    this.#queued += total;
    if (this.#queued >= this.#capacity) this.#full = true;
    if (this.#writer !== null && !this.#writing) this.#turnNow();
  }

  get full(): boolean {
    return this.#full;
  }

  reserve(bytes: number, granted: (view: Uint8Array) => void, done: (error?: unknown) => void): boolean {
    // Before the peer's hello its ring's size is unknown: the channel falls back to a copy.
    if (this.#writer === null || bytes > this.#writer.maxPiece) return false;
    this.#queue.push({ chunks: [], total: 0, offset: 0, done, reserve: { bytes, granted, view: null } });
    if (!this.#writing) this.#turnNow();
    return true;
  }

  commit(bytes: number): void {
    const head = this.#queue[0];
    if (head?.reserve?.view == null) return;
    this.#endReservation(0, (writer) => writer.commit(bytes));
  }

  cancel(): void {
    // Granted (at the head) or still waiting for room behind other writes.
    const at = this.#queue.findIndex((pending) => pending.reserve !== undefined);
    if (at >= 0) this.#endReservation(at, (writer) => this.#queue[at]!.reserve!.view !== null && writer.cancel());
  }

  /** The reservation at `at` of the queue ends: `how`, then the writes after it go on. */
  #endReservation(at: number, how: (writer: RingWriter) => void): void {
    if (this.#writer === null) return;
    const head = this.#queue[at]!;
    how(this.#writer);
    this.#queue.splice(at, 1);
    try {
      if (this.#writer.publish()) this.#ringPeer();
    } catch (error) {
      this.#fail(error);
      head.done(error);
      return;
    }
    head.done();
    this.#turnNow();
  }

  /** A write turn now (a failure ends the channel). */
  #turnNow(): void {
    try {
      this.#writeTurn();
    } catch (error) {
      this.#fail(error);
    }
  }

  end(done: () => void): void {
    if (this.#destroyed || this.#ended) {
      done();
      return;
    }
    this.#ending = done;
    this.#schedule();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#schedule();
  }

  get gone(): boolean {
    return this.#destroyed || (this.#readEnded && (this.#socketEnded || this.#ended));
  }

  #fail(error: unknown): void {
    if (this.#destroyed) return;
    this.#events.error(error);
    this.destroy();
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const pending of this.#queue.splice(0)) pending.done(new InterprocessError('ERR_INTERPROCESS_CLOSED', 'The channel is closed'));
    // A graceful end waiting for the ring can no longer be written: it is over (as a Node stream's
    // end callback is called when the stream is destroyed), so the channel's close() finishes.
    const ending = this.#ending;
    this.#ending = null;
    ending?.();
    try {
      this.#region?.store(OFFSET.readerState, STATE.failed);
      this.#ringPeer();
    } catch {
      /* unmapped already */
    }
    this.#release();
    this.#socket.off('message', this.#onMessage);
    this.#socket.destroy();
    this.#events.gone();
  }

  #release(): void {
    this.#doorbell?.close();
    this.#doorbell = null;
    this.#peerDoorbell?.close();
    this.#peerDoorbell = null;
    this.#region?.unmap();
    this.#peerRegion?.unmap();
    this.#reader = null;
    this.#writer = null;
    if (this.#memoryFd >= 0) closeFdQuietly(this.#memoryFd);
    if (this.#myDoorbellWrite >= 0) closeFdQuietly(this.#myDoorbellWrite);
    this.#memoryFd = this.#myDoorbellWrite = -1;
  }

  ref(keepAlive: boolean): void {
    this.#doorbell?.ref(keepAlive);
    if (keepAlive) this.#socket.ref();
    else this.#socket.unref();
  }
}

let littleEndian: boolean | undefined;
function isLittleEndian(): boolean {
  return (littleEndian ??= new Uint8Array(new Uint32Array([1]).buffer)[0] === 1);
}
