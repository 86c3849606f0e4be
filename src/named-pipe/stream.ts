/**
 * A byte-mode named-pipe connection: a `net.Socket` over our own handle (handed to libuv as a
 * descriptor), so the data path is Node's own, with the peer's process id added.
 */
import net from 'node:net';
import type { LocalSocketName } from '../local-socket/name.js';
import type { PeerCredentials } from '../credentials.js';
import type { NamedPipeEnds, PipeIdentity } from './info.js';

/**
 * A connected byte-mode named pipe: a `net.Socket` (a Duplex with backpressure) that knows its
 * pipe's name and who is at the other end. Its events are net.Socket's.
 */
export class NamedPipeStream extends net.Socket {
  /** The pipe's name: for a client the name it connected to, for an accepted connection its listener's. */
  readonly name: LocalSocketName;
  readonly #identity: PipeIdentity;

  /** @internal Made by {@link listenNamedPipe} and {@link connectNamedPipe}. */
  constructor(fd: number, name: LocalSocketName, identity: PipeIdentity, options: { readable: boolean; writable: boolean; allowHalfOpen: boolean }) {
    super({ fd, ...options });
    this.name = name;
    this.#identity = identity;
  }

  /**
   * The process at the other end: its `pid` (the client's on an accepted connection, the
   * server's on a client), with `uid` and `gid` null (Windows has none). Read when the pipe
   * connected, so it answers also after close.
   */
  peerCredentials(): PeerCredentials {
    return this.#identity.credentials;
  }

  /** Windows only: the process and session ids of both ends, as Windows reported them at connect. */
  pipeEnds(): NamedPipeEnds {
    return this.#identity.ends;
  }
}
