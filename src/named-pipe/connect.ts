/**
 * Connecting to a named pipe: CreateFileW, and while every instance is busy, WaitNamedPipeW (on a
 * Windows pool thread, never Node's loop or thread pool) until one frees up, within `timeout`.
 * With `wait`, also waits for the pipe to appear.
 */
import { InterprocessError, fromSystemError } from '../errors.js';
import type { NativeNamedPipe, NativeNamedPipes } from '../native/addon.js';
import { type RetryOptions, retry } from '../retry.js';
import { endsOf } from './info.js';
import { checkDirection, checkMaxMessageSize, namedPipes, type NamedPipeType } from './options.js';
import { DEFAULT_MAX_MESSAGE_SIZE, MessagePipe, type NamedPipeDirection } from './message.js';
import { pipePath } from './name.js';
import { retag } from './server.js';
import { NamedPipeStream } from './stream.js';

/** Options of {@link connectNamedPipe}. */
export interface NamedPipeConnectOptions extends RetryOptions {
  /** 'byte' (default): a `net.Socket`. 'message': a {@link MessagePipe} (the server must be in message mode). */
  mode?: NamedPipeType;
  /** The server's direction: 'duplex' (default), 'clientToServer' or 'serverToClient'. */
  direction?: NamedPipeDirection;
  /** Message mode: the largest message this end receives (default 16 MiB). */
  maxMessageSize?: number;
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
export async function openPipe(native: NativeNamedPipes, path: string, access: number, message: boolean, cancel: AbortSignal | undefined, busyLimit = Infinity): Promise<NativeNamedPipe> {
  let sawServer = 0; // when the pipe was last seen busy
  let busySince = 0;
  for (;;) {
    try {
      return native.open(path, access, message);
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
  if (code === 'ENOENT') return fromSystemError(error, `Cannot connect to ${path}`, 'No server has this pipe: start it first, or connect with { wait: true } to wait for it.');
  if (code === 'EPERM' || code === 'EACCES') return retag(fromSystemError(error, `Cannot connect to ${path}`, 'The pipe\'s security descriptor denies this user, or its direction does not allow this access.'), 'EACCES');
  if (code === 'EINVAL') return fromSystemError(error, `Cannot connect to ${path}`, 'The server is in byte mode: connect with mode \'byte\'.');
  return fromSystemError(error, `Cannot connect to ${path}`);
}

/** Connects to the named pipe `name` (`NAME`, `\\.\pipe\NAME` or `\\HOST\pipe\NAME`). */
export async function connectNamedPipe(name: string, options?: NamedPipeConnectOptions & { mode?: 'byte' }): Promise<NamedPipeStream>;
export async function connectNamedPipe(name: string, options: NamedPipeConnectOptions & { mode: 'message' }): Promise<MessagePipe>;
export async function connectNamedPipe(name: string, options: NamedPipeConnectOptions = {}): Promise<NamedPipeStream | MessagePipe> {
  const path = pipePath(name);
  const { mode = 'byte', direction = 'duplex', maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE } = options ?? {};
  if (mode !== 'byte' && mode !== 'message') throw new InterprocessError('ERR_INVALID_ARG_VALUE', `The argument 'options.mode' must be 'byte' or 'message'; got ${JSON.stringify(mode)}`);
  checkDirection(direction);
  checkMaxMessageSize(maxMessageSize);
  const native = namedPipes('connectNamedPipe()');
  const c = native.constants;
  const message = mode === 'message';
  // Read access needs FILE_WRITE_ATTRIBUTES too: setting the read mode is a write of attributes.
  const access =
    direction === 'duplex' ? c.GENERIC_READ | c.GENERIC_WRITE
    : direction === 'clientToServer' ? c.GENERIC_WRITE | c.FILE_READ_ATTRIBUTES
    : c.GENERIC_READ | c.FILE_WRITE_ATTRIBUTES;
  const pipe = await retry(options ?? {}, {
    notYet: new Set(['ENOENT']),
    timedOut: (timeout) => new InterprocessError('ETIMEDOUT', `Connecting to ${path} timed out after ${timeout} ms`, { syscall: 'CreateFile', address: path }),
    failed: (error) => connectError(error, path),
  }, (cancel) => openPipe(native, path, access, message, cancel));
  const ends = endsOf(pipe.info());
  const canSend = direction !== 'serverToClient';
  const canReceive = direction !== 'clientToServer';
  if (message) return new MessagePipe(pipe, path, ends, maxMessageSize, canSend, canReceive);
  return new NamedPipeStream(pipe.toFd(), path, ends, canReceive, canSend);
}
