/**
 * Connecting to a named pipe: CreateFileW, and while every instance is busy, WaitNamedPipeW (on a
 * Windows pool thread, never Node's loop or thread pool) until one frees up, within `timeout`.
 * With `wait`, also waits for the pipe to appear.
 */
import { InterprocessError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import type { LocalSocketName } from '../local-socket/name.js';
import type { NativeNamedPipe, NativeNamedPipes } from '../native/addon.js';
import { type RetryOptions, retry } from '../retry.js';
import { pipeConnection } from './connection.js';
import { checkBoolean, checkDirection, checkMaxMessageSize, namedPipes, type NamedPipeType } from './options.js';
import { DEFAULT_MAX_MESSAGE_SIZE, type MessagePipe, type NamedPipeDirection } from './message.js';
import { toPipeName } from './name.js';
import type { NamedPipeStream } from './stream.js';

/** Options of {@link connectNamedPipe}. */
export interface NamedPipeConnectOptions extends RetryOptions {
  /**
   * The pipe type: 'byte' (default) gives a `net.Socket` ({@link NamedPipeStream}), 'message' a
   * {@link MessagePipe} (the server must be of the message type).
   */
  type?: NamedPipeType;
  /** The server's direction: 'duplex' (default), 'clientToServer' or 'serverToClient'. */
  direction?: NamedPipeDirection;
  /** Message type: the largest message this end receives (default 16 MiB). */
  maxMessageSize?: number;
  /** Byte type: keep our writable side open after the server ends its side (as net's `allowHalfOpen`); default false. */
  allowHalfOpen?: boolean;
  /**
   * FILE_FLAG_WRITE_THROUGH: on a byte-type pipe to a server on another machine, a write returns
   * only once the data is in the server's buffer, rather than batched by the network redirector.
   * To a server on this machine (and for the message type) Windows changes nothing. Default false.
   */
  writeThrough?: boolean;
  /**
   * Let the server act as this client while it impersonates it (SECURITY_IMPERSONATION), e.g. open
   * files with this user's rights through `impersonate()`. Default false: the server may only
   * identify this client (SECURITY_IDENTIFICATION: read who it is, never act as it).
   */
  allowImpersonation?: boolean;
}

/** After a busy pipe, how long its name may be missing and still count as busy. */
const BUSY_GRACE_MS = 1000;

/** Longest single WaitNamedPipe, so that a timeout or an abort is noticed soon. */
const WAIT_SLICE_MS = 250;

function waitForInstance(native: NativeNamedPipes, path: string, cancel: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (cancel?.aborted) return resolve();
    native.wait(path, WAIT_SLICE_MS, () => resolve()); // whatever it says, the next open tells
  });
}

/**
 * @internal Opens a client end, waiting (WaitNamedPipe) while every instance is busy: for at most
 * `busyLimit` ms, then the EBUSY error is thrown.
 */
export async function openPipe(native: NativeNamedPipes, path: string, access: number, message: boolean, cancel: AbortSignal | undefined, busyLimit = Infinity, flags: { writeThrough?: boolean; allowImpersonation?: boolean } = {}): Promise<NativeNamedPipe> {
  let sawServer = 0; // when the pipe was last seen busy
  let busySince = 0;
  for (;;) {
    try {
      return native.open(path, access, message, flags.writeThrough === true, flags.allowImpersonation === true);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (cancel?.aborted) throw error;
      // Every instance is busy: a server is there, so waiting for an instance is always right.
      // Right after, the name can vanish for a moment (a server limited to N instances closes
      // one before it makes the next): within a second of seeing it busy, that is still busy.
      if (code === 'EBUSY') {
        sawServer = Date.now();
        busySince ||= sawServer;
        if (sawServer - busySince >= busyLimit) throw error;
      } else if (!(code === 'ENOENT' && Date.now() - sawServer < BUSY_GRACE_MS)) throw error;
    }
    await waitForInstance(native, path, cancel);
  }
}

function connectError(error: unknown, path: string): InterprocessError {
  const code = (error as NodeJS.ErrnoException).code;
  const doing = `Cannot connect to ${path}`;
  if (code === 'ENOENT') return fromSystemError(error, doing, 'No server has this pipe: start it first, or connect with { wait: true } to wait for it.');
  // libuv calls ERROR_ACCESS_DENIED EPERM; a socket that may not be reached is EACCES on Unix.
  if (code === 'EPERM' || code === 'EACCES') return fromSystemError(error, doing, 'The pipe\'s security descriptor denies this user, or its direction does not allow this access.', { code: 'EACCES' });
  if (code === 'EINVAL') return fromSystemError(error, doing, 'The server is of the byte type: connect with type \'byte\'.');
  return fromSystemError(error, doing);
}

/**
 * Connects to the named pipe `name`: `NAME` (or `@NAME`, or `nsName('NAME')`) for `\\.\pipe\NAME`,
 * or a pipe path (`\\.\pipe\NAME`, `\\HOST\pipe\NAME`). Fails with ENOENT when no server has
 * the pipe (unless `wait`), ETIMEDOUT after `timeout`, ABORT_ERR when `signal` aborts,
 * ERR_INTERPROCESS_UNSUPPORTED off Windows.
 */
export async function connectNamedPipe(name: string | LocalSocketName, options?: NamedPipeConnectOptions & { type?: 'byte' }): Promise<NamedPipeStream>;
export async function connectNamedPipe(name: string | LocalSocketName, options: NamedPipeConnectOptions & { type: 'message' }): Promise<MessagePipe>;
export async function connectNamedPipe(name: string | LocalSocketName, options?: NamedPipeConnectOptions): Promise<NamedPipeStream | MessagePipe>;
export async function connectNamedPipe(name: string | LocalSocketName, options: NamedPipeConnectOptions = {}): Promise<NamedPipeStream | MessagePipe> {
  const pipeName = toPipeName(name);
  const path = pipeName.address;
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { type = 'byte', direction = 'duplex', maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE, allowHalfOpen = false } = options;
  if (type !== 'byte' && type !== 'message') throw invalidArgument('options.type', `must be 'byte' or 'message'; got ${JSON.stringify(type)}`);
  checkDirection(direction);
  checkMaxMessageSize(maxMessageSize);
  if (typeof allowHalfOpen !== 'boolean') throw invalidType('options.allowHalfOpen', 'a boolean', allowHalfOpen);
  checkBoolean(options.writeThrough, 'options.writeThrough');
  checkBoolean(options.allowImpersonation, 'options.allowImpersonation');
  const native = namedPipes('connectNamedPipe()');
  const c = native.constants;
  const message = type === 'message';
  // Read access needs FILE_WRITE_ATTRIBUTES too: setting the read mode is a write of attributes.
  const access =
    direction === 'duplex' ? c.GENERIC_READ | c.GENERIC_WRITE
    : direction === 'clientToServer' ? c.GENERIC_WRITE | c.FILE_READ_ATTRIBUTES
    : c.GENERIC_READ | c.FILE_WRITE_ATTRIBUTES;
  const pipe = await retry(options, {
    notYet: new Set(['ENOENT']),
    timedOut: (timeout) => new InterprocessError('ETIMEDOUT', `Connecting to ${path} timed out after ${timeout} ms`, { syscall: 'CreateFile', address: path }),
    failed: (error) => connectError(error, path),
  }, (cancel) => openPipe(native, path, access, message, cancel, Infinity, options));
  return pipeConnection(pipe, pipeName, 'server', { message, direction, maxMessageSize, allowHalfOpen });
}
