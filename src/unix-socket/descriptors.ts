/**
 * Descriptors on the wire (SCM_RIGHTS): what may be sent (numbers, and the objects that own one:
 * net.Socket, net.Server, FileHandle, our sockets and listeners, received descriptors), and what
 * arrives: a {@link ReceivedDescriptor}, which the caller turns into a usable object or takes as
 * a raw number. A received descriptor that is never taken is closed when it is collected.
 */
import fsp from 'node:fs/promises';
import net from 'node:net';
import { InterprocessError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { type NativeDescription, requireNative } from '../native/addon.js';
import { listenOn } from '../unix/listen-on.js';
import { closeFd, closeFdQuietly, handToNode, releaseFd } from '../native/fds.js';
import { descriptorOf } from './descriptor-symbol.js';
import { type UnixSocket, adoptUnixSocket } from './socket.js';

/** What a received descriptor is. */
export type DescriptorKind = 'socket' | 'fifo' | 'file' | 'directory' | 'character-device' | 'block-device' | 'unknown';

/** Objects of ours (sockets, listeners, pipe ends) that carry a descriptor send() can pass. */
export interface HasDescriptor {
  /** The descriptor to pass (the key is the package's own symbol: only its objects have it). */
  readonly [descriptorOf]: () => number;
}


/** What can be sent as a descriptor: its number, or an object that owns one. */
export type Sendable = number | net.Socket | net.Server | fsp.FileHandle | HasDescriptor;

/** The descriptor number behind `value`; throws ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE. */
export function toDescriptor(value: unknown, argument: string): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) throw invalidArgument(argument, `must be a descriptor (a non-negative integer); got ${value}`);
    return value;
  }
  if (value !== null && typeof value === 'object') {
    const own = (value as Partial<HasDescriptor>)[descriptorOf];
    if (typeof own === 'function') return own.call(value);
    if (value instanceof net.Socket || value instanceof net.Server) {
      const fd = (value as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) {
        throw invalidArgument(argument, `is a ${value.constructor.name} without a descriptor: it must be connected (or listening) and not a Windows pipe`);
      }
      return fd;
    }
    const fd = (value as { fd?: unknown }).fd;
    if (value.constructor?.name === 'FileHandle' && typeof fd === 'number') {
      if (fd < 0) throw invalidArgument(argument, 'is a closed FileHandle');
      return fd;
    }
  }
  throw invalidType(argument, 'a descriptor number, a net.Socket, net.Server, FileHandle, or a socket of interprocess', value);
}

// A descriptor nobody took is closed when its wrapper is collected, so none is ever leaked (and
// when a worker's environment is torn down, the addon closes those still in its registry: a
// received descriptor stays there until it is taken, converted or closed; see native/fds.ts).
const unclaimed = new FinalizationRegistry<{ fd: number }>((cell) => {
  if (cell.fd >= 0) closeFdQuietly(cell.fd);
});

/**
 * @internal The method key by which a channel closes the descriptors of a message that its
 * receiver did not take (a conversion under way, toFileHandle's, counts as taken).
 */
export const closeUnclaimed: unique symbol = Symbol('interprocess.closeUnclaimed');

function usedUp(): InterprocessError {
  return new InterprocessError('ERR_INTERPROCESS_DESCRIPTOR_TAKEN', 'This received descriptor was already taken or closed: each one can be used once.');
}

/**
 * A descriptor that arrived with a message (close-on-exec). Use it once: turn it into an object
 * (toNetSocket, toNetServer, toFileHandle, toUnixSocket, which then own it), take() its number
 * (then you close it), or close() it. If you do none of these it is closed when collected.
 */
export class ReceivedDescriptor implements HasDescriptor, Disposable {
  readonly #cell: { fd: number };
  #description: NativeDescription | null = null;
  /** A conversion is under way (toFileHandle awaits an open of the descriptor's path). */
  #busy = false;

  /** @internal */
  constructor(fd: number) {
    this.#cell = { fd };
    unclaimed.register(this, this.#cell, this);
  }

  /** The descriptor number, while this object still owns it (it stays owned: see take()). */
  get fd(): number {
    if (this.#cell.fd < 0) throw usedUp();
    return this.#cell.fd;
  }

  /** The descriptor, for send() and spawnWith(). */
  [descriptorOf](): number {
    return this.fd;
  }

  #describe(): NativeDescription {
    if (this.#description === null) {
      try {
        this.#description = requireNative('Describing a received descriptor').unixSockets.describe(this.fd);
      } catch (error) {
        throw fromSystemError(error, 'Cannot tell what the received descriptor is');
      }
    }
    return this.#description;
  }

  /** What it is: 'socket', 'fifo' (pipes too), 'file', 'directory', 'character-device', ... */
  get kind(): DescriptorKind {
    return this.#describe().kind;
  }

  /** For Unix domain sockets: 'datagram', 'seqpacket' or 'stream'; otherwise null. */
  get socketType(): 'datagram' | 'seqpacket' | 'stream' | null {
    const d = this.#describe();
    return d.unix ? ((['datagram', 'seqpacket', 'stream'] as const)[d.socketType - 1] ?? null) : null;
  }

  /** Whether it is a listening socket (a stream one can become a net.Server: toNetServer()). */
  get listening(): boolean {
    return this.#describe().listening;
  }

  /**
   * Takes the raw descriptor: it is yours now, to close (fs.closeSync) or hand to something that
   * takes ownership. (In a worker thread Node warns when fs closes a descriptor that its fs did
   * not open: prefer converting it, or close() before taking.)
   */
  take(): number {
    const fd = this.#detach();
    releaseFd(fd);
    return fd;
  }

  /** This object no longer owns the descriptor; returns it. */
  #detach(): number {
    const fd = this.fd;
    this.#cell.fd = -1;
    unclaimed.unregister(this);
    return fd;
  }

  /** Closes it (idempotent). */
  close(): void {
    if (this.#cell.fd < 0) return;
    closeFd(this.#detach());
  }

  /** `using descriptor = ...` closes it at the end of the scope, unless it was taken or converted. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal Closes it unless it was taken or is being converted. */
  [closeUnclaimed](): void {
    if (!this.#busy) this.close();
  }

  #require(ok: boolean, what: string): void {
    if (!ok) throw invalidArgument('descriptor', `is a ${this.socketType ? `${this.socketType} ` : ''}${this.kind}${this.listening ? ' (listening)' : ''}, not ${what}`);
  }

  /**
   * A net.Socket on a connected stream socket (Unix or TCP) or on a pipe or FIFO end. Node owns
   * the descriptor from then on.
   */
  toNetSocket(options: { allowHalfOpen?: boolean; readable?: boolean; writable?: boolean } = {}): net.Socket {
    const d = this.#describe();
    this.#require(d.kind === 'fifo' || (d.kind === 'socket' && d.socketType === 3 && !d.listening), 'a connected stream socket or a pipe');
    const pipe = d.kind === 'fifo';
    const fd = this.fd;
    const socket = handToNode(fd, () => new net.Socket({ fd, readable: options.readable ?? true, writable: options.writable ?? !pipe, allowHalfOpen: options.allowHalfOpen ?? false }));
    this.#detach();
    return socket;
  }

  /** A net.Server on a listening stream socket. Node owns the descriptor from then on. */
  async toNetServer(): Promise<net.Server> {
    const d = this.#describe();
    this.#require(d.kind === 'socket' && d.socketType === 3 && d.listening, 'a listening stream socket');
    const server = net.createServer();
    const fd = this.#detach();
    await handToNode(fd, () => listenOn(server, { fd }));
    return server;
  }

  /**
   * A FileHandle on the same open file. Node cannot adopt a raw descriptor as a FileHandle, so
   * the file is opened again through /proc/self/fd (Linux: its own offset) or /dev/fd (dup), with
   * `flags` (default 'r'), and this descriptor is closed.
   */
  async toFileHandle(flags: string | number = 'r'): Promise<fsp.FileHandle> {
    const d = this.#describe();
    this.#require(d.kind === 'file' || d.kind === 'directory' || d.kind === 'character-device' || d.kind === 'block-device', 'a file');
    const fd = this.fd;
    const via = process.platform === 'linux' ? `/proc/self/fd/${fd}` : `/dev/fd/${fd}`;
    let handle: fsp.FileHandle;
    this.#busy = true;
    try {
      handle = await fsp.open(via, flags);
    } catch (error) {
      throw fromSystemError(error, 'Cannot open the received file', 'Its mode may not allow these flags: try \'r\', or take() the descriptor');
    } finally {
      this.#busy = false;
    }
    this.close();
    return handle;
  }

  /** One of our sockets on a Unix datagram, seqpacket or connected stream socket; it owns the descriptor. */
  toUnixSocket(options?: import('./socket.js').UnixSocketOptions): UnixSocket {
    const d = this.#describe();
    this.#require(d.kind === 'socket' && d.unix && d.socketType !== 0 && !d.listening, 'a Unix domain socket');
    const socket = adoptUnixSocket(this.fd, d.socketType, options); // its watcher claims the descriptor
    this.#detach();
    return socket;
  }
}
