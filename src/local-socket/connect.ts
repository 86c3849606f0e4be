/**
 * Connecting to a local socket: one attempt, or with `wait`, attempts until a listener appears
 * (the Rust crate's ConnectWaitMode), all within `timeout` and cancellable through `signal`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InterprocessError, abortError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { type LocalSocketName, toName } from './name.js';
import { LocalSocket, setSocketName } from './stream.js';
import { connectAbstract } from './unix/abstract.js';

export interface ConnectOptions {
  /** Keep retrying while there is no listener (or its backlog is full), until `timeout`. */
  wait?: boolean;
  /** Give up after this many milliseconds with ETIMEDOUT (default: no limit). */
  timeout?: number;
  /** Cancel with ABORT_ERR. */
  signal?: AbortSignal;
  /** Keep our writable side open after the peer ends its side (as net's `allowHalfOpen`). */
  allowHalfOpen?: boolean;
}

/** Errors that mean "no listener (yet)": `wait` retries them. */
const NOT_YET = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN', 'EBUSY']);

function attempt(name: LocalSocketName, allowHalfOpen: boolean, cancel: AbortSignal): Promise<LocalSocket> {
  const direct = connectAbstract(name, allowHalfOpen);
  if (direct) {
    setSocketName(direct, name);
    return Promise.resolve(direct);
  }
  return new Promise((resolve, reject) => {
    const socket = new LocalSocket({ allowHalfOpen });
    const settle = (error: unknown) => {
      cancel.removeEventListener('abort', onAbort);
      socket.off('error', settle);
      socket.off('connect', onConnect);
      if (error === undefined) return resolve(socket);
      socket.destroy();
      reject(error);
    };
    const onAbort = () => settle(cancel.reason);
    const onConnect = () => {
      setSocketName(socket, name);
      settle(undefined);
    };
    socket.once('connect', onConnect);
    socket.once('error', settle);
    cancel.addEventListener('abort', onAbort, { once: true });
    socket.connect({ path: name.address });
  });
}

function checkOptions(options: ConnectOptions): void {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { timeout, signal } = options;
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout))) {
    throw invalidArgument('options.timeout', `must be a non-negative number of milliseconds; got ${String(timeout)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
}

/**
 * Connects to the listener at `name` (a path string, or a name from fsName()/nsName()).
 * Fails with ENOENT or ECONNREFUSED when nothing listens there (unless `wait`), ETIMEDOUT after
 * `timeout`, ABORT_ERR when `signal` aborts.
 */
export async function connect(name: string | LocalSocketName, options: ConnectOptions = {}): Promise<LocalSocket> {
  const resolved = toName(name);
  checkOptions(options);
  const { wait = false, timeout, signal, allowHalfOpen = false } = options;
  if (signal?.aborted) throw abortError(signal);

  // One signal for everything that can end the wait: the caller's abort, and our deadline.
  const timedOut = new Error('timed out');
  const signals: AbortSignal[] = [];
  if (signal) signals.push(signal);
  if (timeout !== undefined) signals.push(AbortSignal.timeout(timeout));
  const cancel = signals.length === 0 ? new AbortController().signal : AbortSignal.any(signals);
  const why = () => (signal?.aborted ? abortError(signal) : timeoutError(resolved, timeout ?? 0, timedOut));

  let delay = 2;
  for (;;) {
    if (cancel.aborted) throw why();
    try {
      return await attempt(resolved, allowHalfOpen, cancel); // may also throw synchronously
    } catch (error) {
      if (cancel.aborted) throw why();
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!wait || !NOT_YET.has(code)) throw connectError(error, resolved);
    }
    try {
      await sleep(delay, undefined, { signal: cancel });
    } catch {
      throw why();
    }
    delay = Math.min(delay * 2, 50);
  }
}

function timeoutError(name: LocalSocketName, timeout: number, cause: Error): InterprocessError {
  return new InterprocessError('ETIMEDOUT', `Connecting to ${name} timed out after ${timeout} ms`, { syscall: 'connect', address: name.address, cause });
}

function connectError(error: unknown, name: LocalSocketName): InterprocessError {
  const code = (error as NodeJS.ErrnoException).code;
  const hint =
    code === 'ENOENT' || code === 'ECONNREFUSED'
      ? 'Nothing is listening there: start the server first, or connect with { wait: true } to wait for it.'
      : code === 'EACCES'
        ? 'This user may not connect to it: check the socket file\'s mode and its directory\'s permissions.'
        : code === 'EAGAIN'
          ? 'The server\'s backlog is full: connect with { wait: true } to retry.'
          : undefined;
  return fromSystemError(error, `Cannot connect to ${name}`, hint, { address: name.address });
}
