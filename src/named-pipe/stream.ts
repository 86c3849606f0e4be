/**
 * A byte-mode named-pipe connection: a `net.Socket` over our own handle (handed to libuv as a
 * descriptor), so the data path is Node's own, with the peer's process id added.
 */
import net from 'node:net';
import type { LocalSocketName } from '../local-socket/name.js';
import type { PeerCredentials } from '../credentials.js';
import { InterprocessError } from '../errors.js';
import { requireNative } from '../native/addon.js';
import { descriptorOf } from '../unix-socket/descriptor-symbol.js';
import { impersonateClient, shareHandle } from './handle.js';
import type { NamedPipeEnds, PipeIdentity } from './info.js';

/**
 * A connected byte-mode named pipe: a `net.Socket` (a Duplex with backpressure) that knows its
 * pipe's name and who is at the other end. Its events are net.Socket's. It can be handed to a
 * child with `spawnWith(cmd, args, { fds: { 3: stream } })` (the child adopts it with
 * `namedPipeFromFd(3)`), or shared with a running process with {@link NamedPipeStream.shareWith}.
 */
export class NamedPipeStream extends net.Socket {
  /**
   * The pipe's name: for a client the name it connected to, for an accepted connection its
   * listener's; null for an adopted handle ({@link namedPipeFromHandle}).
   */
  readonly name: LocalSocketName | null;
  readonly #identity: PipeIdentity;
  readonly #fd: number;

  /** @internal Made by {@link listenNamedPipe} and {@link connectNamedPipe}. */
  constructor(fd: number, name: LocalSocketName | null, identity: PipeIdentity, options: { readable: boolean; writable: boolean; allowHalfOpen: boolean }) {
    super({ fd, ...options });
    this.name = name;
    this.#identity = identity;
    this.#fd = fd;
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

  /**
   * The pipe's Windows handle (a HANDLE's value: Windows keeps handles within 32 bits, so a number
   * holds it), owned by this stream: valid while it is open, closed with it. Throws
   * ERR_SOCKET_CLOSED once the stream is destroyed. Unix descriptors are `fd` elsewhere; this is
   * the Windows handle, not a descriptor.
   */
  get handle(): number {
    if (this.destroyed) throw new InterprocessError('ERR_SOCKET_CLOSED', 'This named pipe is closed: it has no handle any more');
    return requireNative('A named pipe\'s handle').namedPipe.fdHandle(this.#fd);
  }

  /**
   * Runs `fn` synchronously while this thread impersonates the client (ImpersonateNamedPipeClient),
   * and returns what it returns; reverts (RevertToSelf) when `fn` returns or throws. What `fn` does
   * synchronously on this thread (fs.openSync, a child_process.execSync's creation, ...) is done
   * with the client's identity; anything asynchronous is not (impersonation belongs to the thread):
   * an async `fn` is refused (ERR_INVALID_ARG_TYPE) and a promise returned is
   * ERR_INVALID_RETURN_VALUE. Server end only (ERR_INVALID_STATE on a client end). To act with its
   * rights (not only read who it is), the client must connect with `allowImpersonation: true`.
   */
  impersonate<T>(fn: () => T): T {
    return impersonateClient(requireNative('impersonate()').namedPipe, () => this.handle, this.#identity.isServer, fn);
  }

  /**
   * Shares this pipe with the running process `pid`: duplicates the handle into it and returns
   * the handle's value there, for that process to adopt with `namedPipeFromHandle(value)` (send it
   * the number by any means). This end stays open here: close it once the other process has its
   * copy. The Rust crate's ShareHandle.
   */
  shareWith(pid: number): number {
    return shareHandle(requireNative('shareWith()').namedPipe, this.handle, pid);
  }

  /** @internal What spawnWith() hands a child: the descriptor of node.exe's runtime behind this stream. */
  [descriptorOf](): number {
    if (this.destroyed) throw new InterprocessError('ERR_SOCKET_CLOSED', 'This named pipe is closed: it cannot be handed on');
    return this.#fd;
  }
}
