/**
 * A byte-mode named-pipe connection: a `net.Socket` over our own handle (handed to libuv as a
 * descriptor), so the data path is Node's own, with the peer's process ids added.
 */
import net from 'node:net';
import type { NamedPipeEnds } from './info.js';

/** A connected byte-mode named pipe: a `net.Socket` (a Duplex with backpressure) with process ids. */
export class NamedPipeStream extends net.Socket {
  /** The pipe path this connection belongs to. */
  readonly pipeName: string;
  /** Process and session ids of both ends. */
  readonly ends: NamedPipeEnds;

  /** @internal Made by {@link listenNamedPipe} and {@link connectNamedPipe}. */
  constructor(fd: number, pipeName: string, ends: NamedPipeEnds, readable: boolean, writable: boolean, allowHalfOpen = false) {
    super({ fd, readable, writable, allowHalfOpen });
    this.pipeName = pipeName;
    this.ends = ends;
  }
}
