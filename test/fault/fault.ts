/**
 * Helpers of the fault suite (test/fault/): figures printed with each scenario, descriptor
 * baselines, peak memory, and the scale of the heavy scenarios.
 */
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { InterprocessError } from 'interprocess';
import { openFds, spawnFixture } from '../helpers.js';

/**
 * The heavy scenarios run at full scale when INTERPROCESS_FAULT_FULL=1 (.ci/run sets it for its
 * Node 20 pass) and at a reduced scale otherwise, so the suite stays short on every other pass.
 */
export const full = process.env.INTERPROCESS_FAULT_FULL === '1';

/** Prints a scenario's figure (the spec reporter shows a test file's stdout). */
export function figure(text: string): void {
  console.log(`[fault] ${text}`);
}

export const MiB = 1024 * 1024;
export const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MB`;

/**
 * Waits until this process has `baseline` descriptors open again (closing is asynchronous), at
 * most `limitMs`; resolves with how long it took and the count at the end.
 */
export async function fdsBack(baseline: number, limitMs = 10_000): Promise<{ ms: number; fds: number }> {
  const start = performance.now();
  let fds = openFds();
  while (fds !== baseline && performance.now() - start < limitMs) {
    await sleep(10);
    fds = openFds();
  }
  return { ms: Math.round(performance.now() - start), fds };
}

/** Samples this process's RSS every 10 ms: `peak()` is the highest growth over the start. */
export function rssSampler(): { peak(): number; stop(): number } {
  const start = process.memoryUsage.rss();
  let max = start;
  const timer = setInterval(() => {
    max = Math.max(max, process.memoryUsage.rss());
  }, 10);
  timer.unref(); // a test that fails before stop() must not hold its file open until the timeout
  return {
    peak: () => Math.max(max, process.memoryUsage.rss()) - start,
    stop() {
      clearInterval(timer);
      return Math.max(max, process.memoryUsage.rss()) - start;
    },
  };
}

/** True for an InterprocessError with a string code (what every failure must be). */
export function typed(error: unknown): error is InterprocessError {
  return error instanceof InterprocessError && typeof error.code === 'string' && error.code.length > 0;
}

/** Resolves when `check()` holds (polled every 5 ms), rejects after `limitMs`. */
export async function until(check: () => boolean, limitMs: number, what: string): Promise<number> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await sleep(5);
  }
  return performance.now() - start;
}

/**
 * This process's descriptor count with what lasts once made (the addon, libuv's signal pipe of
 * child processes, ...) warmed up: a child started and killed first.
 */
export async function baseline(t: TestContext): Promise<number> {
  const warm = spawnFixture(t, 'fault-peer', ['hold']);
  await warm.next('ready');
  warm.child.kill('SIGKILL');
  await warm.exited;
  await sleep(20);
  return openFds();
}
