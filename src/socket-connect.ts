/**
 * The connect policy of every socket of the package (local sockets, Unix seqpacket and stream
 * sockets, the CLI): "no listener (yet)" is worth waiting for with `wait`, within `timeout`,
 * cancellable through `signal`; every failure typed and worded with what to do.
 */
import { InterprocessError, fromSystemError } from './errors.js';
import type { LocalSocketName } from './local-socket/name.js';
import { isWindows } from './platform.js';
import { type Attempt, type RetryOptions, retry } from './retry.js';

export type { RetryOptions };

/** @internal Errors that mean "no listener (yet)": `wait` retries them (connectSync() too). */
export const NOT_YET = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN', 'EBUSY']);

/**
 * @internal Windows, without `wait`: how long every instance of a pipe may stay busy before
 * connect fails with EAGAIN. A live server makes a new instance as it accepts, within
 * milliseconds; one that has stopped listening but still has connections open keeps its name
 * busy for as long as they last.
 */
export const BUSY_LIMIT_MS = 2000;

/** @internal The policy of every socket connect of the package: "no listener (yet)" is worth waiting for. */
export function connectWithRetry<T>(name: LocalSocketName, options: RetryOptions, attempt: Attempt<T>): Promise<T> {
  return retry(options, { notYet: NOT_YET, timedOut: (timeout) => timeoutError(name, timeout), failed: (error) => connectError(error, name) }, attempt);
}

function timeoutError(name: LocalSocketName, timeout: number): InterprocessError {
  return new InterprocessError('ETIMEDOUT', `Connecting to ${name} timed out after ${timeout} ms`, { syscall: 'connect', address: name.address });
}

/**
 * Windows: the code Unix gives for the same situation, so that a connect fails alike everywhere:
 * libuv calls ERROR_ACCESS_DENIED EPERM, and a socket that may not be reached is EACCES; every
 * instance staying busy is what a full backlog is (EAGAIN).
 */
function unixCode(code: string | undefined): string | undefined {
  if (!isWindows) return code;
  return code === 'EPERM' ? 'EACCES' : code === 'EBUSY' ? 'EAGAIN' : code;
}

/** @internal A failed connect to `name`, typed and worded. */
export function connectError(error: unknown, name: LocalSocketName): InterprocessError {
  const code = unixCode((error as NodeJS.ErrnoException).code);
  const hint =
    code === 'ENOENT' || code === 'ECONNREFUSED'
      ? 'Nothing is listening there: start the server first, or connect with { wait: true } to wait for it.'
      : code === 'EACCES'
        ? isWindows
          ? 'This user may not connect to it: the pipe\'s security descriptor denies it.'
          : 'This user may not connect to it: check the socket file\'s mode and its directory\'s permissions.'
        : code === 'EAGAIN'
          ? isWindows
            ? `Every instance of the pipe stayed busy for ${BUSY_LIMIT_MS} ms: the server accepts no one now (or has stopped listening with connections still open). Connect with { wait: true } to wait for it.`
            : 'The server\'s backlog is full: connect with { wait: true } to retry.'
          : undefined;
  return fromSystemError(error, `Cannot connect to ${name}`, hint, { address: name.address, code });
}
