/**
 * The local socket listener: Unix domain sockets through Node's own `net.Server` (fast and well
 * tested), with safe socket files, modes and takeover (../unix/socket-file.ts); on Windows, named
 * pipes of our own (../named-pipe/server.ts) whose connections are `net.Socket`s over our handles,
 * so that peer process ids, security descriptors and first-instance claims are there.
 */
import net from 'node:net';
import { type AccessCheck, type AccessRule, type Refusal, accessCheck, decide, markAccepted, socketFileMode } from '../access.js';
import { InterprocessError, abortError, fromSystemError, invalidArgument, invalidType, unsupported } from '../errors.js';
import { Listener, type ListenerEvents, closeOnAbort } from '../listener.js';
import { optionalNative, requireNative } from '../native/addon.js';
import { handToNode } from '../native/fds.js';
import { pipeInstance } from '../named-pipe/options.js';
import { PipeServer } from '../named-pipe/server.js';
import { clientRefusal } from '../named-pipe/handle.js';
import { type BindOptions, checkAllowHalfOpen, checkBacklog, checkMode, checkOptionsObject, checkSignal } from '../options.js';
import { isWindows } from '../platform.js';
import { checkFd, describeFd, notA, unixType } from '../service/describe.js';
import { nameFromAddress } from '../unix-socket/address.js';
import { descriptorOf } from '../unix-socket/descriptor-symbol.js';
import { listenOn } from '../unix/listen-on.js';
import { type SocketFile, bindSocketFile, ensurePrivateDirectory, netServerBinder, releaseSocketFile } from '../unix/socket-file.js';
import { type LocalSocketName, toName } from './name.js';
import { LocalSocket, adoptAccepted, socketOverPipe } from './stream.js';
import { listenTarget } from './unix/abstract.js';

/** Options of {@link listen}. */
export interface ListenOptions extends BindOptions {
  /**
   * Who may connect, decided from the kernel's peer credentials before anything of the
   * connection is read: `'same-user'` (default: this user or root), `'any'`, `{ uids, gids }`,
   * or a predicate `(credentials) => boolean`. A refused peer is closed at once, counted in
   * `listener.refused` and reported with a `'refused'` event. See docs/security.md.
   */
  allow?: AccessRule;
  /**
   * Permissions of the socket file (e.g. 0o600), in force before anyone can connect. Unix
   * filesystem (and directory-namespaced) names only. Default: 0o600 when `allow` is
   * 'same-user' (the default), else what the umask leaves.
   */
  mode?: number;
  /** Length of the kernel's queue of connections not yet accepted. */
  backlog?: number;
  /** Keep our writable side open after the peer ends its side (as net's `allowHalfOpen`); default false. */
  allowHalfOpen?: boolean;
  /** Closes the listener when aborted; aborting before it listens fails listen() with ABORT_ERR. */
  signal?: AbortSignal;
  /**
   * Windows: fail with EADDRINUSE if a pipe of this name exists, so no one can squat the name
   * first (default true). Elsewhere a live server's name always fails with EADDRINUSE.
   */
  firstInstance?: boolean;
  /**
   * Windows: who may connect, as an SDDL string (e.g. `'D:(A;;GA;;;OW)'`: only the owner);
   * default: Windows' default for pipes. On Unix, use `mode`.
   */
  securityDescriptor?: string;
}

/**
 * Options of {@link LocalSocketListener.fromFd}: those of {@link listen} that apply to a socket
 * that is already bound and listening.
 */
export interface ListenFromFdOptions {
  /** Who may connect (default `'same-user'`), as {@link ListenOptions.allow}: checked on every connection of the adopted listener. */
  allow?: AccessRule;
  /**
   * The accept queue's length. Node listens on the descriptor again with it; default: the largest
   * the system allows (the kernel does not say which length the socket was made with).
   */
  backlog?: number;
  /** As {@link ListenOptions.allowHalfOpen}; default false. */
  allowHalfOpen?: boolean;
  /** Closes the listener when aborted; aborting before it is adopted fails with ABORT_ERR (the descriptor is then still yours). */
  signal?: AbortSignal;
}

/** What accepts for a listener: a net.Server (Unix) or our pipe server (Windows). */
interface Acceptor {
  /** Stops accepting; resolves when no one can connect through it any more. */
  close(): Promise<void> | void;
  ref(keepAlive: boolean): void;
  /** The listening descriptor (Unix), -1 once closed. */
  fd?(): number;
}

/** How an acceptor hands over what it accepts. */
interface Delivery {
  deliver(socket: LocalSocket): void;
  fail(error: InterprocessError): void;
  refuse(refusal: Refusal): void;
}

/** The events of a {@link LocalSocketListener} (see {@link ListenerEvents}). */
export type LocalSocketListenerEvents = ListenerEvents<LocalSocket>;

/**
 * Accepts connections on a local socket name. Each connection goes to the `'connection'` event
 * if it has listeners, otherwise to async iteration (`for await (const conn of listener)`), queued
 * until taken. `close()` stops accepting and removes the socket file; connections already made
 * stay open. Peers the `allow` rule refuses are closed before anything of theirs is read, never
 * delivered. Events ({@link ListenerEvents}): `'connection'`, `'refused'` (credentials, or null
 * if they could not be read; and what a predicate threw, if it threw), `'error'`, `'close'`.
 */
export class LocalSocketListener extends Listener<LocalSocket> {
  /** The resolved name this listener is bound to. */
  readonly name: LocalSocketName;
  readonly #server: Acceptor;
  readonly #file: SocketFile | null;

  /** @internal Use {@link listen}. */
  constructor(name: LocalSocketName, file: SocketFile | null, start: (delivery: Delivery) => Acceptor) {
    super((socket) => socket.destroy());
    this.name = name;
    this.#file = file;
    this.#server = start({
      deliver: (socket) => this._deliver(socket),
      fail: (error) => this._fail(error),
      refuse: (refusal) => this._refuse(refusal),
    });
  }

  /**
   * The listening socket's descriptor (Unix), for native APIs or to pass on (`send(data, { fds:
   * [listener] })`, {@link storeFds}). The listener owns it: do not close it. Fails with
   * ERR_INTERPROCESS_CLOSED once closed, and with ERR_INTERPROCESS_UNSUPPORTED on Windows, where a
   * listener is named pipe instances, not a descriptor.
   */
  get fd(): number {
    if (isWindows || this.#server.fd === undefined) {
      throw unsupported("A local socket listener's descriptor", 'the listener is a named pipe server there, made of pipe instance handles rather than one descriptor');
    }
    const fd = this.listening ? this.#server.fd() : -1;
    if (fd < 0) throw new InterprocessError('ERR_INTERPROCESS_CLOSED', 'This listener is closed: it has no descriptor any more.');
    return fd;
  }

  /** The descriptor, to hand this listener to another process. */
  [descriptorOf](): number {
    return this.fd;
  }

  /**
   * Adopts a listening Unix stream socket this process was handed by number: by a service manager
   * (see {@link listenFds}), or by a parent in spawn's stdio. It becomes non-blocking and
   * close-on-exec, and the listener owns it; its name is the address it is bound to, and close()
   * leaves that socket file in place (it belongs to whoever made it). The `allow` rule is applied
   * to every connection as by {@link listen}. Fails with ERR_INVALID_ARG_VALUE, saying what the
   * descriptor is, for anything but a listening Unix stream socket (the descriptor is then left
   * open and untouched), EBADF if it is not open, ERR_INTERPROCESS_UNSUPPORTED on Windows.
   */
  static fromFd(fd: number, options: ListenFromFdOptions = {}): Promise<LocalSocketListener> {
    return listenerFromFd(fd, options);
  }

  /** @internal Stops accepting and removes the socket file (if it is still ours). */
  protected _stop(): Promise<void> | void {
    if (this.#file) releaseSocketFile(this.#file);
    return this.#server.close();
  }

  /** @internal */
  protected _ref(keepAlive: boolean): void {
    this.#server.ref(keepAlive);
  }
}

function checkOptions(name: LocalSocketName, options: ListenOptions): AccessCheck {
  checkOptionsObject(options);
  const { securityDescriptor } = options;
  const check = accessCheck(options.allow);
  checkMode(options.mode, name);
  checkBacklog(options.backlog);
  checkSignal(options.signal);
  checkAllowHalfOpen(options.allowHalfOpen);
  if (securityDescriptor !== undefined) {
    if (typeof securityDescriptor !== 'string') throw invalidType('options.securityDescriptor', 'an SDDL string', securityDescriptor);
    if (!isWindows) throw unsupported('options.securityDescriptor', 'it is an SDDL string for Windows named pipes; on Unix, set the socket file\'s `mode`.');
  }
  return check;
}

/**
 * @internal Whether each accepted peer's credentials must be read to enforce `check`. Without
 * the native addon they cannot be: then only the file system can enforce 'same-user' (a socket
 * file of mode 0600 or narrower, or the private namespace directory), and any other rule is
 * refused.
 */
export function needsCredentials(name: LocalSocketName, mode: number | undefined, check: AccessCheck, what: string): boolean {
  if (!check.checks) return false;
  if (optionalNative() !== null) return true;
  const fileEnforces = name.privateDirectory !== null || (name.path !== null && mode !== undefined && (mode & 0o077) === 0);
  if (check.rule === 'same-user' && fileEnforces) return false;
  throw new InterprocessError(
    'ERR_INTERPROCESS_NATIVE',
    `${what} on ${name} cannot enforce its allow rule: reading peer credentials needs the native addon, which is not loaded (see nativeStatus()). Install it, use a socket file with mode 0o600 (same user only), or pass allow: 'any' to let every peer that can reach the name in.`,
  );
}

/**
 * Listens on `name` (a path string, `'@NAME'` for nsName('NAME'), or a name from
 * fsName()/nsName()). Fails with EADDRINUSE when a live server has the name (a stale socket file
 * is taken over), EACCES when this user may not create it, ABORT_ERR when `options.signal`
 * aborts first.
 */
export async function listen(name: string | LocalSocketName, options: ListenOptions = {}): Promise<LocalSocketListener> {
  const resolved = toName(name);
  const check = checkOptions(resolved, options);
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  if (isWindows) return closeOnAbort(listenPipe(resolved, options, check), signal);
  const mode = resolved.path === null ? undefined : socketFileMode(options.mode, check);
  const verify = needsCredentials(resolved, mode, check, 'A listener');
  const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
  const start = accepting(server, resolved, check, verify);
  let file: SocketFile | null = null;
  if (resolved.path !== null) {
    if (resolved.privateDirectory !== null) await ensurePrivateDirectory(resolved.privateDirectory, resolved.path);
    try {
      file = await bindSocketFile(resolved.path, { ...options, mode }, netServerBinder(server, options.backlog));
    } catch (error) {
      start.discard();
      throw error;
    }
  } else {
    try {
      await listenOn(server, listenTarget(resolved, options.backlog));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw fromSystemError(error, `Cannot listen on ${resolved}`, code === 'EADDRINUSE' ? 'Another server has this name: stop it first or choose another name.' : undefined, { address: resolved.address });
    }
  }
  return closeOnAbort(new LocalSocketListener(resolved, file, start), signal);
}

/**
 * How a net.Server's connections reach a listener: each one admitted or refused by the access
 * rule as net.Server accepts it ('connection' comes in the same callback as the accept, so a
 * refused socket is closed before libuv reads from it). Connections accepted before the listener
 * exists (a socket file is reachable once linked into place, before bindSocketFile has finished;
 * an adopted socket may have a queue already) are kept for it.
 */
function accepting(server: net.Server, name: LocalSocketName, check: AccessCheck, verify: boolean): ((delivery: Delivery) => Acceptor) & { discard(): void } {
  const admit = (socket: net.Socket): LocalSocket | Refusal => {
    const local = adoptAccepted(socket, name);
    markAccepted(local, check);
    const refusal = verify ? decide(check, () => local.peerCredentials({ groups: check.needsGroups })) : null;
    if (refusal === null) return local;
    socket.destroy();
    return refusal;
  };
  const early: Array<LocalSocket | Refusal> = [];
  const keepEarly = (socket: net.Socket) => early.push(admit(socket));
  server.on('connection', keepEarly);
  const start = ({ deliver, fail, refuse }: Delivery): Acceptor => {
    const hand = (outcome: LocalSocket | Refusal) => (outcome instanceof LocalSocket ? deliver(outcome) : refuse(outcome));
    server.off('connection', keepEarly);
    server.on('connection', (socket) => hand(admit(socket)));
    // In a later turn, as any connection comes: after the caller has its listener and its handlers.
    if (early.length > 0) setImmediate(() => early.forEach(hand));
    server.on('error', (error) => fail(fromSystemError(error, `The listener on ${name} failed`)));
    return {
      close: () => void server.close(),
      ref: (keepAlive) => (keepAlive ? server.ref() : server.unref()),
      fd: () => (server as unknown as { _handle?: { fd?: number } | null })._handle?.fd ?? -1,
    };
  };
  return Object.assign(start, {
    discard: () => {
      for (const socket of early) if (socket instanceof LocalSocket) socket.destroy();
    },
  });
}

// The largest backlog: listen(2) caps it at the system's maximum (somaxconn).
const MAX_BACKLOG = 0x7fffffff;

async function listenerFromFd(fd: number, options: ListenFromFdOptions): Promise<LocalSocketListener> {
  if (isWindows) throw unsupported('LocalSocketListener.fromFd()', 'a local socket listener there is a named pipe server, which has handles, not descriptors; use listen()');
  checkFd(fd);
  checkOptionsObject(options);
  const check = accessCheck(options.allow);
  checkBacklog(options.backlog);
  checkSignal(options.signal);
  checkAllowHalfOpen(options.allowHalfOpen);
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const what = 'Adopting a listening descriptor';
  const description = describeFd(fd, what);
  if (unixType(description) !== 'stream' || !description.listening) throw notA(fd, description, 'a listening Unix stream socket');
  const native = requireNative(what);
  const name = nameFromAddress(native.unixSockets.address(fd, false));
  if (name === null) throw invalidArgument('fd', `(descriptor ${fd}) is a listening Unix stream socket bound to no name`);
  try {
    native.unixSockets.adopt(fd); // non-blocking, close-on-exec
  } catch (error) {
    throw fromSystemError(error, `Cannot adopt descriptor ${fd}`);
  }
  const verify = needsCredentials(name, undefined, check, 'An adopted listener');
  const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
  const start = accepting(server, name, check, verify);
  try {
    await handToNode(fd, () => listenOn(server, { fd, backlog: options.backlog ?? MAX_BACKLOG }));
  } catch (error) {
    start.discard();
    throw fromSystemError(error, `Cannot listen on descriptor ${fd} (${name})`);
  }
  return closeOnAbort(new LocalSocketListener(name, null, start), signal);
}

/** Windows: a byte-mode duplex pipe server of ours; each connection a LocalSocket over our handle. */
function listenPipe(name: LocalSocketName, options: ListenOptions, check: AccessCheck): LocalSocketListener {
  const native = requireNative('Listening on a local socket').namedPipe;
  // The named-pipe listener's defaults (byte mode, duplex, local clients only, the DACL of the
  // access rule), with our options.
  const { instance } = pipeInstance({ firstInstance: options.firstInstance ?? true, allow: check.rule, ...(options.securityDescriptor === undefined ? {} : { securityDescriptor: options.securityDescriptor }) });
  return new LocalSocketListener(name, null, ({ deliver, fail, refuse }) => {
    const server: PipeServer = new PipeServer(native, name.address, instance, (pipe) => {
      // The client's process id, read before the handle goes to libuv (which reads from it).
      const refusal = clientRefusal(native, pipe, check); // its pid, and under 'same-user' its user
      if (refusal !== null) {
        pipe.close(true);
        server.released();
        refuse(refusal);
        return;
      }
      const socket = socketOverPipe(pipe, name, 'client', options.allowHalfOpen ?? false);
      markAccepted(socket, check);
      socket.once('close', () => server.released());
      deliver(socket);
    }, fail);
    return server;
  });
}
