/**
 * Waiting for a peer: one attempt, or with `wait`, attempts with backoff until one stops failing
 * with a "not yet" error, all within `timeout` and cancellable through `signal`. Every "wait for
 * the other side" of the package (socket connects, FIFO writers) goes through here; each brings
 * only its policy: which codes mean "not yet", and the errors to raise.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type InterprocessError, abortError, invalidArgument, invalidType } from './errors.js';

/** What makes an operation wait, give up, or stop. */
export interface RetryOptions {
  /** Keep retrying while the other side is not there yet, until `timeout`. */
  wait?: boolean;
  /** Give up after this many milliseconds with ETIMEDOUT (default: no limit). */
  timeout?: number;
  /** Cancel with ABORT_ERR. */
  signal?: AbortSignal;
}

/** @internal What differs between the operations that wait. */
export interface RetryPolicy {
  /** Error codes that mean "not there yet": retried while waiting. */
  notYet: ReadonlySet<string>;
  /** The error when `timeout` milliseconds have passed. */
  timedOut(timeout: number): InterprocessError;
  /** The error for a failure that is not retried (any code, or a "not yet" one without `wait`). */
  failed(error: unknown): InterprocessError;
  /** Backoff between attempts, doubling from `firstDelay` to `maxDelay` ms (default 2 and 50). */
  firstDelay?: number;
  maxDelay?: number;
}

/** One attempt; it receives the signal that cancels it, and rejects (or throws) with the system error. */
export type Attempt<T> = (cancel: AbortSignal | undefined) => Promise<T> | T;

/** @internal Validates the options of an operation that waits (before any syscall). */
export function checkRetryOptions(options: RetryOptions): void {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { timeout, signal } = options;
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout))) {
    throw invalidArgument('options.timeout', `must be a non-negative number of milliseconds; got ${String(timeout)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
}

/** @internal Runs `attempt` as `options` and `policy` say; see the top of this file. */
export async function retry<T>(options: RetryOptions, policy: RetryPolicy, attempt: Attempt<T>): Promise<T> {
  checkRetryOptions(options);
  const { timeout, signal } = options;
  if (signal?.aborted) throw abortError(signal);

  // The plain path (no timeout, no signal) sets up nothing, so a connect costs what net.connect costs.
  if (timeout === undefined && signal === undefined) return loop(options, policy, attempt, undefined);

  // One controller for everything that ends the wait: the caller's abort and our own timer (a
  // plain timer: AbortSignal.timeout inside AbortSignal.any can be collected on Node 20).
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = timeout === undefined ? undefined : setTimeout(onAbort, timeout);
  const why = () => (signal?.aborted ? abortError(signal) : policy.timedOut(timeout ?? 0));
  try {
    return await loop(options, policy, attempt, { signal: controller.signal, why });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** What can end the wait early: a signal, and the error to raise when it does. */
interface Cancel {
  signal: AbortSignal;
  why(): InterprocessError;
}

async function loop<T>(options: RetryOptions, policy: RetryPolicy, attempt: Attempt<T>, cancel: Cancel | undefined): Promise<T> {
  const maxDelay = policy.maxDelay ?? 50;
  let delay = policy.firstDelay ?? 2;
  for (;;) {
    if (cancel?.signal.aborted) throw cancel.why();
    try {
      return await attempt(cancel?.signal);
    } catch (error) {
      if (cancel?.signal.aborted) throw cancel.why();
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!options.wait || !policy.notYet.has(code)) throw policy.failed(error);
    }
    try {
      await sleep(delay, undefined, { signal: cancel?.signal });
    } catch {
      throw cancel!.why();
    }
    delay = Math.min(delay * 2, maxDelay);
  }
}
