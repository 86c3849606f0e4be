/**
 * The options of named pipes, checked and filled in once: what CreateNamedPipeW gets for each
 * instance (shared by named-pipe listeners and Windows local sockets), the pipe type and
 * direction, and the default DACL of each access rule.
 */
import { type AccessCheck, type AccessRule, accessCheck } from '../access.js';
import { invalidArgument, invalidType, unsupported } from '../errors.js';
import { type NativeNamedPipes, requireNative } from '../native/addon.js';
import { checkAllowHalfOpen, checkOptionsObject, checkSignal } from '../options.js';
import { isWindows } from '../platform.js';
import { DEFAULT_MAX_MESSAGE_SIZE, type NamedPipeDirection } from './message.js';
import type { InstanceOptions } from './server.js';

/** The pipe type: byte (a stream of bytes) or message (each write one message). */
export type NamedPipeType = 'byte' | 'message';

/** Options of {@link listenNamedPipe} (the pipe type and what CreateNamedPipeW gets, checked once here). */
export interface NamedPipeListenOptions {
  /** 'byte' (default): connections are `net.Socket`s. 'message': connections are {@link MessagePipe}s. */
  type?: NamedPipeType;
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
  /**
   * FILE_FLAG_WRITE_THROUGH on every instance: on a byte-type pipe whose client is on another
   * machine, a write returns only once the data is in the remote end's buffer, rather than batched
   * by the network redirector. Between processes of one machine (and for the message type) Windows
   * changes nothing. Default false.
   */
  writeThrough?: boolean;
  /** Message type: the largest message a connection receives (default 16 MiB). */
  maxMessageSize?: number;
  /** Byte type: keep our writable side open after the client ends its side (as net's `allowHalfOpen`); default false. */
  allowHalfOpen?: boolean;
  /** Closes the listener when aborted; aborting first fails listenNamedPipe() with ABORT_ERR. */
  signal?: AbortSignal;
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

function bufferSize(value: unknown, argument: string): number {
  if (value === undefined) return 65536;
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 0xffffffff) throw invalidArgument(argument, `must be a byte count from 0 to 4294967295; got ${String(value)}`);
  return value as number;
}

/** @internal A checked pipe instance, with what the listener needs besides. */
export interface PipeInstance {
  instance: InstanceOptions;
  maxMessageSize: number;
  allowHalfOpen: boolean;
  check: AccessCheck;
}

/** @internal Validates and fills in the options (named-pipe listeners and Windows local sockets). */
export function pipeInstance(options: NamedPipeListenOptions): PipeInstance {
  checkOptionsObject(options);
  const { type = 'byte', direction = 'duplex', maxInstances = 'unlimited', securityDescriptor, maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE } = options;
  checkPipeType(type);
  checkDirection(direction);
  if (maxInstances !== 'unlimited' && (!Number.isInteger(maxInstances) || maxInstances < 1 || maxInstances > 254)) {
    throw invalidArgument('options.maxInstances', `must be from 1 to 254, or 'unlimited'; got ${String(maxInstances)}`);
  }
  if (securityDescriptor !== undefined && typeof securityDescriptor !== 'string') throw invalidType('options.securityDescriptor', 'an SDDL string', securityDescriptor);
  checkSignal(options.signal);
  checkAllowHalfOpen(options.allowHalfOpen);
  checkMaxMessageSize(maxMessageSize);
  checkBoolean(options.writeThrough, 'options.writeThrough');
  const check = accessCheck(options.allow);
  return {
    check,
    instance: {
      message: type === 'message',
      direction,
      maxInstances: maxInstances === 'unlimited' ? 255 : maxInstances,
      inBufferSize: bufferSize(options.inBufferSize, 'options.inBufferSize'),
      outBufferSize: bufferSize(options.outBufferSize, 'options.outBufferSize'),
      rejectRemoteClients: options.rejectRemoteClients ?? true,
      firstInstance: options.firstInstance ?? true,
      securityDescriptor: securityDescriptor ?? defaultSecurityDescriptor(check.rule),
      inheritable: options.inheritable ?? false,
      writeThrough: options.writeThrough ?? false,
    },
    maxMessageSize,
    allowHalfOpen: options.allowHalfOpen ?? false,
  };
}

/** @internal An optional boolean option. */
export function checkBoolean(value: unknown, argument: string): void {
  if (value !== undefined && typeof value !== 'boolean') throw invalidType(argument, 'a boolean', value);
}

/** @internal */
export function checkPipeType(type: unknown): asserts type is NamedPipeType {
  if (type !== 'byte' && type !== 'message') throw invalidArgument('options.type', `must be 'byte' or 'message'; got ${JSON.stringify(type)}`);
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
