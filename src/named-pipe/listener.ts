/**
 * Named-pipe listeners (Windows): byte-mode connections are `net.Socket`s (NamedPipeStream),
 * message-mode ones are MessagePipes. Every CreateNamedPipeW option is here, with safe defaults:
 * local clients only, the first instance claimed so no one can squat the name, and a DACL that
 * lets in only this user, SYSTEM and Administrators (the `allow` rule 'same-user').
 */
import { EventEmitter } from 'node:events';
import { type AccessCheck, type AccessRule, accessCheck, decide, markAccepted, reportRefusal } from '../access.js';
import { AcceptQueue, closeOnAbort, closedSoon } from '../accept-queue.js';
import { abortError, invalidArgument, invalidType, unsupported } from '../errors.js';
import { requireNative } from '../native/addon.js';
import type { NativeNamedPipes } from '../native/addon.js';
import { isWindows } from '../platform.js';
import type { LocalSocketName } from '../local-socket/name.js';
import { pipeConnection } from './connection.js';
import { DEFAULT_MAX_MESSAGE_SIZE, type MessagePipe, type NamedPipeDirection } from './message.js';
import { toPipeName } from './name.js';
import { type InstanceOptions, PipeServer } from './server.js';
import type { NamedPipeStream } from './stream.js';

/** The pipe type (Win32's word): byte (a stream of bytes) or message (each write one message). */
export type NamedPipeType = 'byte' | 'message';

/** Byte mode (a stream of bytes) or message mode (each write one message). */
export type NamedPipeMode = NamedPipeType;

/** Options of {@link listenNamedPipe}. */
export interface NamedPipeListenOptions {
  /** 'byte' (default): connections are `net.Socket`s. 'message': connections are {@link MessagePipe}s. */
  mode?: NamedPipeMode;
  /** Who sends: 'duplex' (default), 'clientToServer' or 'serverToClient'. */
  direction?: NamedPipeDirection;
  /** Most instances (connections plus waiting instances) of this pipe: 1 to 254, or 'unlimited' (default). */
  maxInstances?: number | 'unlimited';
  /** Input buffer size Windows reserves per instance, in bytes (advisory; default 65536). */
  inBufferSize?: number;
  /** Output buffer size Windows reserves per instance, in bytes (advisory; default 65536). */
  outBufferSize?: number;
  /** Refuse clients on other machines (PIPE_REJECT_REMOTE_CLIENTS); default true. */
  rejectRemoteClients?: boolean;
  /**
   * Fail with EADDRINUSE if a pipe of this name exists (FILE_FLAG_FIRST_PIPE_INSTANCE), so no
   * one can squat the name before us; default true.
   */
  firstInstance?: boolean;
  /**
   * Who may connect: `'same-user'` (default), `'any'`, or a predicate of the client's
   * credentials (`{ pid, uid: null, gid: null }`), called before the connection is handed on. The
   * rule also sets the pipe's DACL when `securityDescriptor` is not given (see
   * {@link defaultSecurityDescriptor}). A refused client is closed, counted in
   * `listener.refused` and reported with a `'refused'` event.
   */
  allow?: AccessRule;
  /**
   * Who may open the pipe, as an SDDL string (e.g. `'D:P(A;;GA;;;OW)'`: only the owner), enforced
   * by Windows before a client connects. Default: {@link defaultSecurityDescriptor} of `allow`.
   */
  securityDescriptor?: string;
  /** Whether the pipe handles may be inherited by child processes; default false. */
  inheritable?: boolean;
  /** Message mode: the largest message a connection receives (default 16 MiB). */
  maxMessageSize?: number;
  /** Closes the listener when aborted; aborting first fails listenNamedPipe() with ABORT_ERR. */
  signal?: AbortSignal;
}

/** What a listener of each mode accepts. */
export type NamedPipeConnection<M extends NamedPipeMode> = M extends 'message' ? MessagePipe : NamedPipeStream;

/**
 * Accepts clients on a named pipe. Each connection goes to the `'connection'` event if it has
 * listeners, otherwise to async iteration, queued until taken. `close()` stops accepting;
 * connections made stay open. Events: `'connection'`, `'refused'` (a client the `allow`
 * predicate refused: its credentials, and what the predicate threw if it threw), `'error'`, `'close'`.
 */
export class NamedPipeListener<M extends NamedPipeMode = 'byte'> extends EventEmitter implements AsyncIterable<NamedPipeConnection<M>>, AsyncDisposable {
  /** The full pipe path (`\\.\pipe\NAME`). */
  readonly pipeName: string;
  readonly #server: PipeServer;
  readonly #connections = new AcceptQueue<NamedPipeConnection<M>>(this, (c) => c.destroy());
  #closed = false;
  #closing: Promise<void> | null = null;
  #refused = 0;

  /** @internal Use {@link listenNamedPipe}. */
  constructor(native: NativeNamedPipes, name: LocalSocketName, instance: InstanceOptions, maxMessageSize: number, check: AccessCheck) {
    super();
    const path = name.address;
    this.pipeName = path;
    const { direction } = instance;
    this.#server = new PipeServer(native, path, instance, (pipe) => {
      // Before the pipe is read from or handed on: the client's process id is all Windows tells.
      const refusal = decide(check, () => {
        const pid = pipe.info().clientProcessId;
        return Object.freeze({ pid: pid > 0 ? pid : null, uid: null, gid: null });
      });
      if (refusal !== null) {
        pipe.close(true);
        this.#server.released();
        this.#refused++;
        reportRefusal(this, refusal);
        return;
      }
      const connection = pipeConnection(pipe, name, 'client', { message: instance.message, direction, maxMessageSize, allowHalfOpen: false });
      markAccepted(connection, check);
      connection.once('close', () => this.#server.released());
      this.#connections.deliver(connection as NamedPipeConnection<M>);
    }, (error) => this.#connections.fail(error));
  }

  /** True until close() is called. */
  get listening(): boolean {
    return !this.#closed;
  }

  /** How many clients the `allow` predicate has refused so far. */
  get refused(): number {
    return this.#refused;
  }

  /** Stops accepting and ends async iteration; connections queued but never taken are destroyed. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    const stopped = this.#server.close();
    this.#connections.end();
    return (this.#closing = closedSoon(this, stopped));
  }

  /**
   * The access control list Windows holds for this pipe, as SDDL (e.g. `'D:(A;;GA;;;WD)'`): the
   * `securityDescriptor` option as Windows took it, or Windows' default.
   */
  securityDescriptor(): string {
    return this.#server.securityDescriptor();
  }

  /** Lets the process exit while this listener waits. */
  unref(): this {
    this.#server.ref(false);
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.#server.ref(true);
    return this;
  }

  /** Accepted connections, in order. Leaving the loop closes the listener. */
  [Symbol.asyncIterator](): AsyncIterator<NamedPipeConnection<M>> {
    return this.#connections.iterator(() => this.close());
  }

  /** `await using listener = await listenNamedPipe(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function bufferSize(value: unknown, argument: string): number {
  if (value === undefined) return 65536;
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 0xffffffff) throw invalidArgument(argument, `must be a byte count from 0 to 4294967295; got ${String(value)}`);
  return value as number;
}

/**
 * The DACL a pipe gets when no `securityDescriptor` is given, as SDDL. For `'same-user'`: full
 * access for the pipe's owner (`OW`: the user that created it, or the Administrators group for
 * an elevated process), SYSTEM and Administrators, and nobody else. For `'any'` and a predicate
 * (which then decides, from the client's process id): read and write for every authenticated
 * user (`AU`) besides. The `P` flag keeps inherited entries out.
 */
export function defaultSecurityDescriptor(rule: AccessRule = 'same-user'): string {
  const owner = 'D:P(A;;GA;;;OW)(A;;GA;;;SY)(A;;GA;;;BA)';
  return rule === 'same-user' ? owner : `${owner}(A;;GRGW;;;AU)`;
}

/** @internal Validates and fills in the options (shared with Windows local sockets). */
export function instanceOptions(options: NamedPipeListenOptions): { instance: InstanceOptions; maxMessageSize: number; check: AccessCheck } {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { mode = 'byte', direction = 'duplex', maxInstances = 'unlimited', securityDescriptor, signal, maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE } = options;
  if (mode !== 'byte' && mode !== 'message') throw invalidArgument('options.mode', `must be 'byte' or 'message'; got ${JSON.stringify(mode)}`);
  checkDirection(direction);
  if (maxInstances !== 'unlimited' && (!Number.isInteger(maxInstances) || maxInstances < 1 || maxInstances > 254)) {
    throw invalidArgument('options.maxInstances', `must be from 1 to 254, or 'unlimited'; got ${String(maxInstances)}`);
  }
  if (securityDescriptor !== undefined && typeof securityDescriptor !== 'string') throw invalidType('options.securityDescriptor', 'an SDDL string', securityDescriptor);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
  checkMaxMessageSize(maxMessageSize);
  const check = accessCheck(options.allow);
  return {
    check,
    instance: {
      message: mode === 'message',
      direction,
      maxInstances: maxInstances === 'unlimited' ? 255 : maxInstances,
      inBufferSize: bufferSize(options.inBufferSize, 'options.inBufferSize'),
      outBufferSize: bufferSize(options.outBufferSize, 'options.outBufferSize'),
      rejectRemoteClients: options.rejectRemoteClients ?? true,
      firstInstance: options.firstInstance ?? true,
      securityDescriptor: securityDescriptor ?? defaultSecurityDescriptor(check.rule),
      inheritable: options.inheritable ?? false,
    },
    maxMessageSize,
  };
}

/** @internal */
export function checkDirection(direction: unknown): asserts direction is NamedPipeDirection {
  if (direction !== 'duplex' && direction !== 'clientToServer' && direction !== 'serverToClient') {
    throw invalidArgument('options.direction', `must be 'duplex', 'clientToServer' or 'serverToClient'; got ${JSON.stringify(direction)}`);
  }
}

/** @internal */
export function checkMaxMessageSize(value: unknown): void {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 0xffffffff) {
    throw invalidArgument('options.maxMessageSize', `must be a positive byte count up to 4294967295; got ${String(value)}`);
  }
}

/** @internal The native named pipes, or ERR_INTERPROCESS_UNSUPPORTED off Windows. */
export function namedPipes(what: string): NativeNamedPipes {
  if (!isWindows) throw unsupported(what, 'named pipes are a Windows primitive; use listen()/connect() (local sockets) for the same code on every OS.');
  return requireNative(what).namedPipe;
}

/**
 * Listens on the named pipe `name` (`NAME` or `\\.\pipe\NAME`). Fails with EADDRINUSE when a
 * pipe of that name exists (unless `firstInstance: false`), EACCES when its security denies us,
 * ERR_INTERPROCESS_UNSUPPORTED off Windows.
 */
export async function listenNamedPipe<M extends NamedPipeMode = 'byte'>(name: string, options: NamedPipeListenOptions & { mode?: M } = {}): Promise<NamedPipeListener<M>> {
  const pipeName = toPipeName(name);
  const { instance, maxMessageSize, check } = instanceOptions(options);
  const native = namedPipes('listenNamedPipe()');
  if (options.signal?.aborted) throw abortError(options.signal);
  return closeOnAbort(new NamedPipeListener<M>(native, pipeName, instance, maxMessageSize, check), options.signal);
}
