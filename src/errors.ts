/**
 * Every failure in interprocess is an {@link InterprocessError}: a stable `code` (Node's own
 * codes where they fit: `ENOENT`, `EADDRINUSE`, `ERR_INVALID_ARG_VALUE`, `ABORT_ERR`, ...) and a
 * message that says what happened and what to do about it.
 */
import util from 'node:util';

import type { ReceivedSocketName } from './unix-socket/address.js';
import type { MessageCredentials } from './unix-socket/types.js';

/** Extra fields of a system error, as on Node's own errors. */
export interface ErrorDetails {
  /** libuv's (negative) error number. */
  errno?: number;
  /** The system call that failed. */
  syscall?: string;
  /** The filesystem path involved. */
  path?: string;
  /** The socket address involved. */
  address?: string;
  /** The underlying error, kept as the error's `cause`. */
  cause?: unknown;
}

/**
 * What a message that failed still carries, on the error in its place: the bytes that did arrive
 * (`data`), who sent them (`from`), their credentials, or the size of a message too large to take.
 */
export interface MessageErrorDetails {
  /** The message's size in bytes (ERR_INTERPROCESS_MESSAGE_TOO_LARGE, EMSGSIZE). */
  readonly size?: number;
  /** The part of the message that arrived (EMSGSIZE, ERR_INTERPROCESS_CTRUNC, EMFILE). */
  readonly data?: Buffer;
  /** The sender's address, on a datagram socket (its exact bytes in `from.bytes`). */
  readonly from?: ReceivedSocketName | null;
  /** The sender's credentials, where the socket receives them (`passCredentials`). */
  readonly credentials?: MessageCredentials | null;
  /** Bytes of a failed write that did reach the peer (ERR_INTERPROCESS_SHORT_WRITE, EPIPE). */
  readonly bytesWritten?: number;
}

// Marks every error interprocess makes, whatever built-in class it extends (TypeError for a bad
// argument's type, RangeError for a number out of range), so `instanceof InterprocessError` holds.
const made = Symbol('interprocess.error');

/** The error type of every failure raised by interprocess. */
export class InterprocessError extends Error implements MessageErrorDetails {
  /**
   * True for every error interprocess raises, including its argument errors, which are Node's
   * kinds (a TypeError for ERR_INVALID_ARG_TYPE and ERR_INVALID_ARG_VALUE, a RangeError for
   * ERR_OUT_OF_RANGE) so that code written against Node's own errors handles them too.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== InterprocessError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && made in value;
  }

  /** Stable, machine-readable code: an errno name (`ENOENT`) or an `ERR_...` code. */
  readonly code: string;
  /** libuv's (negative) error number, for system errors. */
  declare readonly errno?: number;
  /** The system call that failed, for system errors. */
  declare readonly syscall?: string;
  /** The filesystem path involved, if any. */
  declare readonly path?: string;
  /** The socket address involved, if any. */
  declare readonly address?: string;
  declare readonly size?: number;
  declare readonly data?: Buffer;
  declare readonly from?: MessageErrorDetails['from'];
  declare readonly credentials?: MessageErrorDetails['credentials'];
  declare readonly bytesWritten?: number;

  constructor(code: string, message: string, details: ErrorDetails & MessageErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = code === 'ABORT_ERR' ? 'AbortError' : 'InterprocessError';
    this.code = code;
    brand(this, details);
  }
}

function brand(error: Error, details: ErrorDetails & MessageErrorDetails): void {
  Object.defineProperty(error, made, { value: true });
  for (const key of ['errno', 'syscall', 'path', 'address', 'size', 'data', 'from', 'credentials', 'bytesWritten'] as const) {
    if (details[key] !== undefined) Object.assign(error, { [key]: details[key] });
  }
}

/** A TypeError or RangeError with Node's argument-error code, still an InterprocessError. */
function argumentError(Kind: typeof TypeError | typeof RangeError, code: string, message: string): InterprocessError {
  const error = Object.assign(new Kind(message), { code });
  brand(error, {});
  return error as unknown as InterprocessError;
}

/** An argument that has the right type but a value we cannot use. */
export function invalidArgument(argument: string, message: string): InterprocessError {
  return argumentError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument '${argument}' ${message}`);
}

/** An argument of the wrong type. */
export function invalidType(argument: string, expected: string, value: unknown): InterprocessError {
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `type ${typeof value}`;
  return argumentError(TypeError, 'ERR_INVALID_ARG_TYPE', `The argument '${argument}' must be ${expected}; got ${got}`);
}

/** A number outside the range an argument accepts. */
export function outOfRange(argument: string, range: string, value: unknown): InterprocessError {
  return argumentError(RangeError, 'ERR_OUT_OF_RANGE', `The value of '${argument}' is out of range. It must be ${range}. Received ${String(value)}`);
}

/** The operation was cancelled through an AbortSignal. */
export function abortError(signal: AbortSignal): InterprocessError {
  return new InterprocessError('ABORT_ERR', 'The operation was aborted', { cause: signal.reason });
}

/** A feature this platform does not offer. */
export function unsupported(what: string, hint: string): InterprocessError {
  return new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', `${what} is not supported on ${process.platform}: ${hint}`);
}

// What to do at a descriptor limit, when the caller has no better hint.
const LIMIT_HINT = {
  EMFILE: 'This process has as many descriptors open as its limit allows (RLIMIT_NOFILE, ulimit -n): close those it no longer needs, or raise the limit',
  ENFILE: 'The system has as many files open as it allows (fs.file-max): close some, or raise the limit',
} as const;

// Errors the native addon made (through nativeError), before any caller added what it was doing.
const bare = new WeakSet<InterprocessError>();

/**
 * The error factory of the native addon (src/native/addon.ts registers it): every error
 * the addon throws or hands to a callback is an InterprocessError made here. It is "bare": its
 * message names only the system call, so fromSystemError still adds what the caller was doing.
 */
export function nativeError(code: string, message: string, errno?: number, syscall?: string): InterprocessError {
  const kind = code === 'ERR_OUT_OF_RANGE' ? RangeError : code.startsWith('ERR_INVALID_ARG_') || code === 'ERR_MISSING_ARGS' ? TypeError : null;
  if (kind) return argumentError(kind, code, message);
  const error = new InterprocessError(code, message, { errno, syscall });
  bare.add(error);
  return error;
}

/** The errno libuv (and so Node) gives the error `code` on this platform, if it has one. */
function errnoOf(code: string): number | undefined {
  // Looked up only when a code is replaced; a runtime without the map (not Node) gives none.
  for (const [errno, [name]] of util.getSystemErrorMap?.() ?? []) if (name === code) return errno;
  return undefined;
}

/**
 * Re-raises a system error from Node or the addon as an InterprocessError with the same code,
 * errno and syscall, and a message that adds what the caller was doing and what to try. With
 * `extra.code`, the error is built with that code instead (and its errno): the code Unix gives
 * for the same situation, say, where Windows reports another (the system's message is kept).
 * The message fields of `extra` (`size`, `bytesWritten`, ...) go on the error as they are.
 */
export function fromSystemError(error: unknown, doing: string, hint?: string, extra: ErrorDetails & MessageErrorDetails & { code?: string } = {}): InterprocessError {
  const e = error as NodeJS.ErrnoException;
  const recoded = extra.code !== undefined && extra.code !== e?.code;
  if (error instanceof InterprocessError && !bare.has(error) && !recoded) return error;
  const code = extra.code ?? (typeof e?.code === 'string' ? e.code : 'ERR_INTERPROCESS');
  // Abstract socket addresses start with NUL: show them as '@name', as ss(8) does.
  const reason = (e?.message ?? String(error)).replace(/\0/g, '@');
  hint ??= code === 'EMFILE' || code === 'ENFILE' ? LIMIT_HINT[code] : undefined;
  const message = `${doing}: ${reason}${hint ? `. ${hint}` : ''}`;
  const { code: _, ...details } = extra;
  return new InterprocessError(code, message, {
    ...details,
    errno: recoded ? errnoOf(code) : e?.errno,
    syscall: e?.syscall,
    path: extra.path ?? (e as { path?: string })?.path,
    address: extra.address ?? (e as { address?: string })?.address,
    cause: error,
  });
}
