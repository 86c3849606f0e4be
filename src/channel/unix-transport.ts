/**
 * A Channel's transport over a Unix stream socket of ours: bytes and, as ancillary data,
 * descriptors (see transport.ts for what a transport does); and the choice of transport for a
 * stream (transportOf).
 */
import type { Duplex } from 'node:stream';
import { invalidArgument, invalidType } from '../errors.js';
import type { ReceivedDescriptor } from '../unix-socket/descriptors.js';
import { UnixSocket, type UnixMessage } from '../unix-socket/socket.js';
import { SharedMemoryTransport, nativeSharedMemory } from '../shared-memory/transport.js';
import { StreamTransport, type Transport, type TransportEvents } from './transport.js';
import type { StreamPair } from './types.js';

// Bytes handed to a Unix socket and not yet taken by its kernel, beyond which the channel waits.
const UNIX_HIGH_WATER = 64 * 1024;

/** A Unix stream socket of ours: bytes and, as ancillary data, descriptors. */
export class UnixTransport implements Transport {
  readonly passesFds = true;
  /** send() resolves once the kernel has the bytes. */
  readonly writesCopied = true;
  readonly #socket: UnixSocket;
  readonly #events: TransportEvents;
  readonly #onMessage: (message: UnixMessage) => void;
  #paused = false;
  /** The socket ended while paused: messages it read ahead wait in its inbox, and the end comes after them. */
  #endWaits = false;
  #queued = 0;
  #full = false;

  constructor(socket: UnixSocket, events: TransportEvents) {
    this.#socket = socket;
    this.#events = events;
    this.#onMessage = (message) => events.data(message.data, message.fds.length > 0 ? (message.fds as ReceivedDescriptor[]) : null);
    socket.on('message', this.#onMessage);
    socket.on('end', () => {
      if (this.#paused) this.#endWaits = true;
      else events.end();
    });
    socket.on('error', (error) => events.error(error));
    socket.on('close', () => events.gone());
  }

  write(chunks: Uint8Array[], fds: Int32Array | null, done: (error?: unknown) => void): void {
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.byteLength;
    this.#queued += bytes;
    if (this.#queued >= UNIX_HIGH_WATER) this.#full = true;
    let failed = false;
    const fail = (error: unknown) => {
      if (!failed) {
        failed = true;
        done(error);
      }
    };
    let last: Promise<void>;
    if (fds !== null) {
      // The whole frame in one sendmsg, so the descriptors (attached to its first bytes) arrive
      // with bytes of this frame and of no other.
      const frame = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      last = this.#socket.send(frame, { fds });
    } else {
      for (let i = 0; i < chunks.length - 1; i++) this.#socket.send(chunks[i]!).catch(fail);
      last = this.#socket.send(chunks[chunks.length - 1]!);
    }
    last.then(
      () => {
        this.#queued -= bytes;
        if (!failed) done();
        if (this.#full && this.#queued < UNIX_HIGH_WATER / 2) {
          this.#full = false;
          this.#events.drain();
        }
      },
      (error) => {
        this.#queued -= bytes;
        fail(error);
      },
    );
  }

  get full(): boolean {
    return this.#full;
  }

  end(done: () => void): void {
    this.#socket.end().then(done, done);
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#socket.off('message', this.#onMessage);
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // Adding the listener hands it what the socket read ahead, in a microtask queued now; the
    // end, if it came meanwhile, follows them (unless they paused us again).
    this.#socket.on('message', this.#onMessage);
    if (this.#endWaits) {
      queueMicrotask(() => {
        if (this.#paused || !this.#endWaits) return;
        this.#endWaits = false;
        this.#events.end();
      });
    }
  }

  get gone(): boolean {
    return this.#socket.closed;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  ref(keepAlive: boolean): void {
    if (keepAlive) this.#socket.ref();
    else this.#socket.unref();
  }
}

/** The transport for `stream`, checked. */
export function transportOf(stream: Duplex | StreamPair | UnixSocket, events: TransportEvents, options: { transport?: unknown; ringSize?: number; spin?: number } = {}): Transport {
  if (options.transport === 'shared-memory') {
    nativeSharedMemory(); // Windows: unsupported, whatever the stream
    if (!(stream instanceof UnixSocket)) throw invalidArgument('stream', "must be a Unix stream socket of interprocess (connectUnix, listenUnix, unixSocketPair) for transport: 'shared-memory': the shared memory is handed over it");
    return new SharedMemoryTransport(stream, events, options);
  }
  if (options.transport !== undefined && options.transport !== 'stream') throw invalidArgument('options.transport', `must be 'stream' or 'shared-memory'; got ${String(options.transport)}`);
  if (stream instanceof UnixSocket) {
    if (stream.type !== 'stream') throw invalidArgument('stream', `is a ${stream.type} socket; a channel needs a stream socket (its frames are a byte stream)`);
    return new UnixTransport(stream, events);
  }
  const pair = stream as StreamPair;
  const readable = typeof pair?.readable === 'object' && typeof pair?.writable === 'object' ? pair.readable : (stream as Duplex);
  const writable = readable === stream ? (stream as Duplex) : pair.writable;
  if (typeof readable?.on !== 'function' || typeof writable?.write !== 'function') {
    throw invalidType('stream', 'a Duplex stream, { readable, writable }, or a Unix stream socket', stream);
  }
  return new StreamTransport(readable, writable, events);
}
