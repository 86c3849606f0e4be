/**
 * What the blocking calls share: the addon's `sync` export (native/unix/sync.c,
 * native/windows/sync.c), their timeouts as deadlines, and a sleep that blocks the calling thread.
 */
import { invalidArgument } from '../errors.js';
import { checkOptionsObject } from '../options.js';

/** @internal The addon's `sync` export. Timeouts in ms, -1 for none; -1 returned: out of time. */
export interface NativeSync {
  /** Unix: (address bytes, timeout) -> fd; Windows: (pipe path, timeout, busy limit) -> client. */
  connect(address: Buffer | string, timeoutMs: number, busyMs?: number): number | object;
  /** Bytes read (at least 1), 0 at the end, -1 out of time. */
  read(handle: number | object, buffer: Buffer, offset: number, length: number, timeoutMs: number): number;
  /** Bytes written: all, or fewer when out of time; a failure carries `bytesWritten`. */
  write(handle: number | object, buffer: Buffer, offset: number, length: number, timeoutMs: number): number;
  /** Windows: closes a client. */
  close?(handle: object): void;
  /** Windows: the server's process id (-1: unknown). */
  serverProcessId?(handle: object): number;
}

/** @internal The options object of a blocking call ({} when absent), checked. */
export function optionsOf<T extends object>(options: T | undefined): T {
  if (options === undefined) return {} as T;
  checkOptionsObject(options);
  return options;
}

/** @internal A timeout option as whole milliseconds, -1 for none (checked). */
export function checkTimeout(timeout: unknown, argument = 'options.timeout'): number {
  if (timeout === undefined || timeout === Infinity) return -1;
  if (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout)) {
    throw invalidArgument(argument, `must be a non-negative number of milliseconds; got ${String(timeout)}`);
  }
  return Math.min(Math.ceil(timeout), 0x7fffffff);
}

/** @internal The deadline (performance.now() based) of a timeout in ms, -1 for none. */
export function deadlineOf(timeout: number): number {
  return timeout < 0 ? -1 : performance.now() + timeout;
}

/** @internal What is left of a deadline in whole ms (-1: no deadline, 0: passed). */
export function leftOf(deadline: number, timeout: number): number {
  if (timeout < 0) return -1;
  return Math.max(0, Math.ceil(deadline - performance.now()));
}

let sleeper: Int32Array | null = null;

/** @internal Blocks the calling thread (main or worker) for `ms` milliseconds. */
export function sleepSync(ms: number): void {
  sleeper ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleeper, 0, 0, ms);
}
