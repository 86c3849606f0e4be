/**
 * Connecting to a local socket: one attempt, or with `wait`, attempts until a listener appears
 * (the Rust crate's ConnectWaitMode), all within `timeout` and cancellable through `signal`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InterprocessError, abortError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { type LocalSocketName, toName } from './name.js';
import { LocalSocket, setSocketName } from './stream.js';
import { connectAbstract } from './unix/abstract.js';

/** Options of {@link connect}. */
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

function attempt(name: LocalSocketName, allowHalfOpen: boolean, cancel: AbortSignal | undefined): Promise<LocalSocket> {
  const direct = connectAbstract(name, allowHalfOpen);
  if (direct) {
    setSocketName(direct, name);
    return Promise.resolve(direct);
  }
  return new Promise((resolve, reject) => {
    const socket = new LocalSocket({ allowHalfOpen });
    const settle = (error: unknown) => {
      cancel?.removeEventListener('abort', onAbort);
      socket.off('error', settle);
      socket.off('connect', onConnect);
      if (error === undefined) return resolve(socket);
      socket.destroy();
      reject(error);
    };
    const onAbort = () => settle(cancel!.reason);
    const onConnect = () => {
      setSocketName(socket, name);
      settle(undefined);
    };
    socket.once('connect', onConnect);
    socket.once('error', settle);
    cancel?.addEventListener('abort', onAbort, { once: true });
    socket.connect({ path: name.address });
  });
}

function checkOptions(options: RetryOptions): void {
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
  const allowHalfOpen = options?.allowHalfOpen ?? false;
  return connectWithRetry(resolved, options, (cancel) => attempt(resolved, allowHalfOpen, cancel));
}

/** What makes a connect wait, give up, or stop: shared by every connect of the package. */
export type RetryOptions = Pick<ConnectOptions, 'wait' | 'timeout' | 'signal'>;

/**
 * Runs `attempt` (one connection attempt, which rejects with the system error) once, or with
 * `wait` until it stops failing with "no listener (yet)", within `timeout` and `signal`.
 */
export async function connectWithRetry<T>(name: LocalSocketName, options: RetryOptions, attempt: (cancel: AbortSignal | undefined) => Promise<T>): Promise<T> {
  checkOptions(options);
  const { wait = false, timeout, signal } = options;
  if (signal?.aborted) throw abortError(signal);

  // The plain path (no timeout, no signal) sets up nothing, so it costs what net.connect costs.
  if (timeout === undefined && signal === undefined) return connectLoop(name, wait, attempt, undefined);

  // One controller for everything that ends the wait: the caller's abort and our own timer (a
  // plain timer: AbortSignal.timeout inside AbortSignal.any can be collected on Node 20).
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = timeout === undefined ? undefined : setTimeout(onAbort, timeout);
  const why = () => (signal?.aborted ? abortError(signal) : timeoutError(name, timeout ?? 0));
  try {
    return await connectLoop(name, wait, attempt, { signal: controller.signal, why });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** What can end a connect early: a signal, and the error to raise when it does. */
interface Cancel {
  signal: AbortSignal;
  why(): InterprocessError;
}

async function connectLoop<T>(name: LocalSocketName, wait: boolean, attempt: (cancel: AbortSignal | undefined) => Promise<T>, cancel: Cancel | undefined): Promise<T> {
  let delay = 2;
  for (;;) {
    if (cancel?.signal.aborted) throw cancel.why();
    try {
      return await attempt(cancel?.signal); // may also throw synchronously
    } catch (error) {
      if (cancel?.signal.aborted) throw cancel.why();
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!wait || !NOT_YET.has(code)) throw connectError(error, name);
    }
    try {
      await sleep(delay, undefined, { signal: cancel?.signal });
    } catch {
      throw cancel!.why();
    }
    delay = Math.min(delay * 2, 50);
  }
}

function timeoutError(name: LocalSocketName, timeout: number): InterprocessError {
  return new InterprocessError('ETIMEDOUT', `Connecting to ${name} timed out after ${timeout} ms`, { syscall: 'connect', address: name.address });
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
