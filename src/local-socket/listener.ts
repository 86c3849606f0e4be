/**
 * The local socket listener: Unix domain sockets on Unix, named pipes on Windows, both through
 * Node's own `net.Server` (fast and well tested), with safe socket files, modes and takeover on
 * Unix (./unix/socket-file.ts).
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { AcceptQueue, closeOnAbort, closedSoon } from '../accept-queue.js';
import { abortError, fromSystemError, invalidArgument, invalidType, unsupported } from '../errors.js';
import { isWindows } from '../platform.js';
import { type LocalSocketName, toName } from './name.js';
import { LocalSocket, adoptAccepted } from './stream.js';
import { listenOn } from './listen-on.js';
import { listenTarget } from './unix/abstract.js';
import { type SocketFile, bindSocketFile, ensurePrivateDirectory, netServerBinder, releaseSocketFile } from './unix/socket-file.js';

/** Options of {@link listen}. */
export interface ListenOptions {
  /**
   * Permissions of the socket file (e.g. 0o600), in force before anyone can connect. Unix
   * filesystem (and directory-namespaced) names only.
   */
  mode?: number;
  /** Replace a stale socket file that nothing accepts on (default true). Never removes a non-socket. */
  takeOver?: boolean;
  /** Length of the kernel's queue of connections not yet accepted. */
  backlog?: number;
  /** Keep our writable side open after the peer ends its side (as net's `allowHalfOpen`). */
  allowHalfOpen?: boolean;
  /** Closes the listener when aborted; aborting before it listens fails listen() with ABORT_ERR. */
  signal?: AbortSignal;
  /**
   * Windows: fail if a pipe of this name exists, so no one can squat the name first (default
   * true; Node's pipes always do this, so false is not yet supported).
   */
  firstInstance?: boolean;
}

/**
 * Accepts connections on a local socket name. Each connection goes to the `'connection'` event
 * if it has listeners, otherwise to async iteration (`for await (const conn of listener)`), queued
 * until taken. `close()` stops accepting and removes the socket file; connections already made
 * stay open. Events: `'connection'`, `'error'`, `'close'`.
 */
export class LocalSocketListener extends EventEmitter implements AsyncIterable<LocalSocket>, AsyncDisposable {
  /** The resolved name this listener is bound to. */
  readonly name: LocalSocketName;
  readonly #server: net.Server;
  readonly #file: SocketFile | null;
  readonly #connections = new AcceptQueue<LocalSocket>(this, (socket) => socket.destroy());
  #closed = false;

  /** @internal Use {@link listen}. */
  constructor(server: net.Server, name: LocalSocketName, file: SocketFile | null) {
    super();
    this.name = name;
    this.#server = server;
    this.#file = file;
    server.on('connection', (socket) => this.#connections.deliver(adoptAccepted(socket, name)));
    server.on('error', (error) => this.#connections.fail(fromSystemError(error, `The listener on ${name} failed`)));
  }

  /** True until close() is called. */
  get listening(): boolean {
    return !this.#closed;
  }

  /**
   * Stops accepting, removes the socket file (if it is still ours), and ends async iteration.
   * Connections queued for iteration but never taken are destroyed; taken ones stay open.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#file) releaseSocketFile(this.#file);
    this.#server.close();
    this.#connections.end();
    return closedSoon(this);
  }

  /** Lets the process exit while this listener is open (as net.Server's). */
  unref(): this {
    this.#server.unref();
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.#server.ref();
    return this;
  }

  /** Accepted connections, in order. Leaving the loop (break, return, throw) closes the listener. */
  [Symbol.asyncIterator](): AsyncIterator<LocalSocket> {
    return this.#connections.iterator(() => this.close());
  }

  /** `await using listener = await listen(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function checkOptions(name: LocalSocketName, options: ListenOptions): void {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { mode, backlog, signal, firstInstance } = options;
  if (mode !== undefined) {
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw invalidArgument('options.mode', `must be a permission mode from 0 to 0o777; got ${String(mode)}`);
    if (name.path === null) {
      throw invalidArgument('options.mode', `applies only to names with a socket file; ${name} has none (abstract names and pipes have no file permissions). Check peerCredentials() of each connection instead.`);
    }
  }
  if (backlog !== undefined && (!Number.isInteger(backlog) || backlog < 0)) throw invalidArgument('options.backlog', `must be a non-negative integer; got ${String(backlog)}`);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
  if (firstInstance === false && isWindows) throw unsupported('firstInstance: false', 'Node\'s named pipes always claim the first instance.');
}

/**
 * Listens on `name` (a path string, or a name from fsName()/nsName()). Fails with EADDRINUSE
 * when a live server has the name (a stale socket file is taken over), EACCES when this user may
 * not create it, ABORT_ERR when `options.signal` aborts first.
 */
export async function listen(name: string | LocalSocketName, options: ListenOptions = {}): Promise<LocalSocketListener> {
  const resolved = toName(name);
  checkOptions(resolved, options);
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
  let file: SocketFile | null = null;
  if (resolved.path !== null) {
    if (resolved.privateDirectory !== null) await ensurePrivateDirectory(resolved.privateDirectory, resolved.path);
    file = await bindSocketFile(resolved.path, options, netServerBinder(server, options.backlog));
  } else {
    try {
      await listenOn(server, listenTarget(resolved, options.backlog));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw fromSystemError(error, `Cannot listen on ${resolved}`, code === 'EADDRINUSE' ? 'Another server has this name: stop it first or choose another name.' : undefined, { address: resolved.address });
    }
  }
  return closeOnAbort(new LocalSocketListener(server, resolved, file), signal);
}
