/**
 * A named pipe's handle as a value: shared with another process (DuplicateHandle into it, the Rust
 * crate's ShareHandle) and adopted there (a handle, or a descriptor of node.exe's runtime, which
 * is what spawnWith() puts at a child's descriptor); and the identity of a server end's client:
 * impersonating it for one synchronous call, and checking it against the `allow` rule.
 */
import fs from 'node:fs';
import { types } from 'node:util';
import { type AccessCheck, type Refusal, decide } from '../access.js';
import { type PeerCredentials, pipeCredentials } from '../credentials.js';
import { InterprocessError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import type { NativeNamedPipe, NativeNamedPipes } from '../native/addon.js';
import { pipeConnection } from './connection.js';
import { DEFAULT_MAX_MESSAGE_SIZE, type MessagePipe, type NamedPipeDirection } from './message.js';
import { type NamedPipeType, checkBoolean, checkMaxMessageSize, checkPipeType, namedPipes } from './options.js';
import type { NamedPipeStream } from './stream.js';

/** Options of {@link namedPipeFromHandle} and {@link namedPipeFromFd}. */
export interface NamedPipeAdoptOptions {
  /**
   * The pipe's type: 'byte' (default) gives a `net.Socket` ({@link NamedPipeStream}), 'message' a
   * {@link MessagePipe}. It must be the type the pipe was created with (ERR_INVALID_ARG_VALUE).
   */
  type?: NamedPipeType;
  /** Message type: the largest message this end receives (default 16 MiB). */
  maxMessageSize?: number;
  /** Byte type: keep our writable side open after the peer ends its side (as net's `allowHalfOpen`); default false. */
  allowHalfOpen?: boolean;
}

/** @internal A handle number as JS holds it (Windows keeps handles within 32 bits). */
export function checkHandle(value: unknown, argument: string): asserts value is number {
  if (typeof value !== 'number') throw invalidType(argument, 'a handle (a number, as `.handle` gives it)', value);
  if (!Number.isInteger(value) || value < 1 || value > 0xffffffff) throw invalidArgument(argument, `must be a handle (an integer from 1 to 4294967295); got ${value}`);
}

function checkPid(value: unknown): asserts value is number {
  if (typeof value !== 'number') throw invalidType('pid', 'a process id (a number)', value);
  if (!Number.isInteger(value) || value < 1 || value > 0xffffffff) throw invalidArgument('pid', `must be a process id (an integer from 1 to 4294967295); got ${value}`);
}

/** @internal `handle` duplicated into process `pid`: its value there. */
export function shareHandle(native: NativeNamedPipes, handle: number, pid: unknown): number {
  checkPid(pid);
  try {
    return native.share(handle, pid);
  } catch (error) {
    throw fromSystemError(error, `Cannot share the pipe with process ${pid}`, 'The process must be running, and this user allowed to duplicate handles into it (PROCESS_DUP_HANDLE: the same user, not elevated above us).');
  }
}

// Whether this thread (this module's instance: one per JS thread) is inside impersonate()'s fn.
let impersonating = false;

/**
 * @internal fn() while this thread impersonates the client of the server end `handle`; reverted
 * when fn returns or throws. Refuses an async fn before calling it, and a promise fn returned after.
 */
export function impersonateClient<T>(native: NativeNamedPipes, handle: () => number, isServer: boolean, fn: () => T): T {
  if (typeof fn !== 'function') throw invalidType('fn', 'a function', fn);
  if (types.isAsyncFunction(fn) || types.isGeneratorFunction(fn)) {
    throw invalidType('fn', 'a synchronous function (impersonation belongs to this thread and ends when fn returns: it cannot last across an await; do the asynchronous part after, with what fn returned)', fn);
  }
  if (!isServer) throw new InterprocessError('ERR_INVALID_STATE', 'Only the server end of a named pipe can impersonate its client: this is a client end');
  // Nested, the inner revert would end the outer impersonation too, and the rest of the outer fn
  // would run as this process rather than as its client.
  if (impersonating) throw new InterprocessError('ERR_INVALID_STATE', 'impersonate() was called inside another impersonate(): this thread already impersonates a client. Impersonate one client at a time.');
  let called = false;
  let result: T;
  try {
    result = native.impersonate(handle(), () => {
      called = true;
      impersonating = true;
      try {
        return fn();
      } finally {
        impersonating = false;
      }
    });
  } catch (error) {
    if (called) throw error; // fn's own, as it threw it
    throw fromSystemError(error, 'Cannot impersonate the client of this pipe');
  }
  if (result !== null && (typeof result === 'object' || typeof result === 'function') && typeof (result as { then?: unknown }).then === 'function') {
    (result as unknown as PromiseLike<unknown>).then(undefined, () => {}); // reported below, not as an unhandled rejection
    throw new InterprocessError('ERR_INVALID_RETURN_VALUE', 'The function given to impersonate() returned a promise: only its synchronous part ran as the client (impersonation belongs to this thread and ended when the function returned). Pass a synchronous function, and do the asynchronous part after.');
  }
  return result;
}

// This process's user, read once.
let ownUser: { sid: string; admin: boolean } | null = null;

/** The SID of LocalSystem, which the default DACL lets in as Unix's rule lets in root. */
const LOCAL_SYSTEM = 'S-1-5-18';

/**
 * Whether a client's user passes 'same-user' on Windows: it is this process's user,
 * LocalSystem, or an Administrators member (the three the default DACL lets open the pipe).
 */
export function isSameUser(client: { sid: string; admin: boolean }, own: { sid: string }): boolean {
  return client.sid === own.sid || client.sid === LOCAL_SYSTEM || client.admin;
}

/**
 * @internal The `allow` decision for a client that connected to a server instance of ours, before
 * anything of it is read. Under 'same-user', the client's user (its token, read by impersonating
 * it) is checked as well: the default DACL already keeps other users out where Windows enforces
 * it, but a `securityDescriptor` of the caller's may let more in, and Wine enforces none.
 */
export function clientRefusal(native: NativeNamedPipes, pipe: NativeNamedPipe, check: AccessCheck): Refusal | null {
  let read: PeerCredentials | undefined;
  const refusal = decide(check, () => (read = pipeCredentials(pipe.info().clientProcessId)));
  if (refusal !== null || check.rule !== 'same-user') return refusal;
  const credentials = read!; // read by decide, which admitted them
  try {
    ownUser ??= native.tokenUser(false)!;
    return isSameUser(native.clientUser(pipe.handle()), ownUser) ? null : { credentials };
  } catch (error) {
    return { credentials, error: fromSystemError(error, 'Cannot read the user of a client') };
  }
}

function adoptOptions(options: NamedPipeAdoptOptions): Required<NamedPipeAdoptOptions> {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { type = 'byte', maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE, allowHalfOpen = false } = options;
  checkPipeType(type);
  checkMaxMessageSize(maxMessageSize);
  checkBoolean(allowHalfOpen, 'options.allowHalfOpen');
  return { type, maxMessageSize, allowHalfOpen };
}

/** Checks that `handle` is a connected pipe end we can drive, and wraps it (it owns the handle from then on). */
function adopt(native: NativeNamedPipes, handle: number, options: Required<NamedPipeAdoptOptions>, argument: string): NamedPipeStream | MessagePipe {
  const c = native.constants;
  let info: ReturnType<NativeNamedPipes['describe']>;
  try {
    info = native.describe(handle);
  } catch (error) {
    throw fromSystemError(error, `Cannot adopt ${argument} ${handle}`, 'It is not an open handle of this process.');
  }
  if (info.fileType !== c.FILE_TYPE_PIPE || info.flags < 0) throw invalidArgument(argument, `must be a named pipe; got ${handle}, which is not one`);
  if (info.mode >= 0 && (info.mode & (c.FILE_SYNCHRONOUS_IO_ALERT | c.FILE_SYNCHRONOUS_IO_NONALERT)) !== 0) {
    throw invalidArgument(argument, `must be a pipe opened for overlapped I/O (FILE_FLAG_OVERLAPPED); ${handle} does synchronous I/O, which would block the event loop`);
  }
  const message = (info.flags & c.PIPE_TYPE_MESSAGE) !== 0;
  if (message !== (options.type === 'message')) {
    throw invalidArgument('options.type', `must be the pipe's own type: ${handle} is a pipe of the ${message ? 'message' : 'byte'} type; adopt it with { type: '${message ? 'message' : 'byte'}' }`);
  }
  const server = (info.flags & c.PIPE_SERVER_END) !== 0;
  const reads = info.access < 0 || (info.access & c.FILE_READ_DATA) !== 0;
  const writes = info.access < 0 || (info.access & c.FILE_WRITE_DATA) !== 0;
  // Who sends, in the server's words: a server end that only reads is 'clientToServer', and so on.
  const direction: NamedPipeDirection = reads && writes ? 'duplex' : reads === server ? 'clientToServer' : 'serverToClient';
  let pipe: NativeNamedPipe;
  try {
    pipe = native.adopt(handle, message);
  } catch (error) {
    throw fromSystemError(error, `Cannot adopt the pipe ${handle}`);
  }
  return pipeConnection(pipe, null, server ? 'client' : 'server', { message, direction, maxMessageSize: options.maxMessageSize, allowHalfOpen: options.allowHalfOpen });
}

/**
 * Adopts a connected named-pipe end by its handle (a number: what `.handle` gives, or what
 * `shareWith(pid)` made in this process): a {@link NamedPipeStream} for the byte type, a
 * {@link MessagePipe} for `{ type: 'message' }`, which owns the handle from then on and closes it.
 * The handle must be overlapped (FILE_FLAG_OVERLAPPED) and of the type given; on any error it
 * stays the caller's. `.name` is null; `peerCredentials()` and `pipeEnds()` are read now.
 * ERR_INTERPROCESS_UNSUPPORTED off Windows.
 */
export function namedPipeFromHandle(handle: number, options?: NamedPipeAdoptOptions & { type?: 'byte' }): NamedPipeStream;
export function namedPipeFromHandle(handle: number, options: NamedPipeAdoptOptions & { type: 'message' }): MessagePipe;
export function namedPipeFromHandle(handle: number, options?: NamedPipeAdoptOptions): NamedPipeStream | MessagePipe;
export function namedPipeFromHandle(handle: number, options: NamedPipeAdoptOptions = {}): NamedPipeStream | MessagePipe {
  checkHandle(handle, 'handle');
  const settings = adoptOptions(options);
  return adopt(namedPipes('namedPipeFromHandle()'), handle, settings, 'handle');
}

/**
 * Adopts a connected named-pipe end by its descriptor of node.exe's C runtime: what
 * `spawnWith(cmd, args, { fds: { 3: stream } })` hands a child at fd 3. The descriptor is
 * closed (its handle, duplicated, goes to the object), so it must not be used elsewhere. As
 * {@link namedPipeFromHandle} otherwise. ERR_INTERPROCESS_UNSUPPORTED off Windows.
 */
export function namedPipeFromFd(fd: number, options?: NamedPipeAdoptOptions & { type?: 'byte' }): NamedPipeStream;
export function namedPipeFromFd(fd: number, options: NamedPipeAdoptOptions & { type: 'message' }): MessagePipe;
export function namedPipeFromFd(fd: number, options?: NamedPipeAdoptOptions): NamedPipeStream | MessagePipe;
export function namedPipeFromFd(fd: number, options: NamedPipeAdoptOptions = {}): NamedPipeStream | MessagePipe {
  if (typeof fd !== 'number') throw invalidType('fd', 'a descriptor (a number)', fd);
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw invalidArgument('fd', `must be a descriptor (a non-negative integer); got ${fd}`);
  const settings = adoptOptions(options);
  const native = namedPipes('namedPipeFromFd()');
  let handle: number;
  try {
    handle = native.duplicate(native.fdHandle(fd));
  } catch (error) {
    throw fromSystemError(error, `Cannot adopt descriptor ${fd}`, 'It is not an open descriptor of this process.');
  }
  let connection: NamedPipeStream | MessagePipe;
  try {
    connection = adopt(native, handle, settings, 'fd');
  } catch (error) {
    native.closeHandle(handle);
    throw error;
  }
  fs.closeSync(fd); // the original handle, in node.exe's runtime (the copy is the object's)
  return connection;
}
