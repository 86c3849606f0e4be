/**
 * Signals: a typed API over what each OS really offers. On Unix, real signals to processes and
 * process groups. On Windows they are emulated by Node: sending SIGINT, SIGTERM, SIGKILL or SIGQUIT
 * terminates the process (others fail with ENOSYS); only SIGINT, SIGBREAK, SIGHUP and SIGWINCH can be
 * caught, from the console; there are no process groups.
 */
import os from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { InterprocessError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { isWindows } from '../platform.js';

/** A signal name that this platform's Node knows, e.g. 'SIGTERM'. */
export type SignalName = NodeJS.Signals;

/** What this platform and this Node can do with one signal. */
export interface SignalInfo {
  /** Its name, e.g. 'SIGTERM'. */
  readonly name: SignalName;
  /** Its number on this platform. */
  readonly number: number;
  /** Whether sendSignal() can send it (on Windows: SIGINT, SIGTERM, SIGKILL and SIGQUIT, each terminating the target). */
  readonly canSend: boolean;
  /** Whether onSignal() can listen for it here. */
  readonly canCatch: boolean;
  /** Why it cannot be caught (or sent), when it cannot. */
  readonly reason?: string;
}

const numbers = os.constants.signals as Record<string, number>;
const WINDOWS_CATCHABLE = new Set(['SIGINT', 'SIGBREAK', 'SIGHUP', 'SIGWINCH']);
// What Node (libuv's uv_kill) can send on Windows: each ends the target (TerminateProcess, exit
// code 1) without running its handlers; any other signal fails with ENOSYS.
const WINDOWS_SENDABLE = new Set(['SIGINT', 'SIGTERM', 'SIGKILL', 'SIGQUIT']);
const WINDOWS_SEND_REASON = 'on Windows Node can only send SIGINT, SIGTERM, SIGKILL and SIGQUIT (each terminates the target); sending another signal fails with ENOSYS';

function whyNotCatchable(name: string): string | undefined {
  if (name === 'SIGKILL' || name === 'SIGSTOP') return 'the OS never lets a process catch it';
  if (isWindows && !WINDOWS_CATCHABLE.has(name)) return 'Windows only delivers SIGINT, SIGBREAK, SIGHUP and SIGWINCH to a process (from its console)';
  if (name === 'SIGUSR1') return 'Node reserves it to start the inspector (debugger)';
  if (['SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGILL'].includes(name)) return 'Node cannot resume after it (the process would loop or crash); it is reported by the OS, not caught';
  if (name === 'SIGPROF') return 'Node\'s CPU profiler uses it';
  if (!isMainThread) return 'signals are delivered to the main thread only, not to worker threads';
  return undefined;
}

/** Every signal this platform's Node knows, with what can be done with it. */
export function signals(): SignalInfo[] {
  return Object.entries(numbers)
    .sort(([, a], [, b]) => a - b)
    .map(([name, number]) => {
      const catchReason = whyNotCatchable(name);
      const canSend = !isWindows || WINDOWS_SENDABLE.has(name);
      const reason = [catchReason, !canSend && WINDOWS_SEND_REASON].filter(Boolean).join('; ');
      return Object.freeze({ name: name as SignalName, number, canSend, canCatch: catchReason === undefined, ...(reason ? { reason } : {}) });
    });
}

function checkSignal(signal: unknown): SignalName {
  if (typeof signal !== 'string') throw invalidType('signal', "a signal name such as 'SIGTERM'", signal);
  if (!(signal in numbers)) {
    throw new InterprocessError('ERR_UNKNOWN_SIGNAL', `Unknown signal: ${JSON.stringify(signal)}. This platform knows ${Object.keys(numbers).join(', ')}`);
  }
  return signal as SignalName;
}

function checkPid(pid: unknown, argument: string): number {
  if (!Number.isInteger(pid) || (pid as number) <= 0) throw invalidArgument(argument, `must be a positive integer process id; got ${String(pid)}`);
  return pid as number;
}

function deliver(target: number, signal: SignalName, what: string): void {
  try {
    process.kill(target, signal);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === 'ESRCH' ? `No such ${what} (it may have exited).`
      : code === 'EPERM' ? `This process may not signal that ${what} (it belongs to another user).`
      : code === 'ENOSYS' && isWindows ? `${WINDOWS_SEND_REASON[0]!.toUpperCase()}${WINDOWS_SEND_REASON.slice(1)}.`
      : undefined;
    throw fromSystemError(error, `Cannot send ${signal} to ${what} ${Math.abs(target)}`, hint);
  }
}

/** Sends `signal` to the process `pid`. Fails with ESRCH (no such process) or EPERM (not allowed). */
export function sendSignal(pid: number, signal: SignalName): void {
  const name = checkSignal(signal);
  deliver(checkPid(pid, 'pid'), name, 'process');
}

/**
 * Sends `signal` to every process in the process group `pgid` (Unix). A child spawned with
 * `detached: true` leads a new group whose id is its pid.
 */
export function sendSignalToGroup(pgid: number, signal: SignalName): void {
  const name = checkSignal(signal);
  checkPid(pgid, 'pgid');
  if (isWindows) throw new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', 'Windows has no process groups to signal; signal each process with sendSignal().');
  deliver(-pgid, name, 'process group');
}

/** A handler's disposer: call it (or `using` it) to stop listening. */
export interface SignalSubscription {
  /** Removes the handler. */
  (): void;
  /** The same, for `using`. */
  [Symbol.dispose](): void;
}

/** Options of {@link onSignal}. */
export interface OnSignalOptions {
  /**
   * Removes the handler when aborted, as `addEventListener`'s `signal` option does (an already
   * aborted signal installs nothing). Disposing of the subscription still works too.
   */
  signal?: AbortSignal;
}

/**
 * Calls `handler` each time this process receives `signal`, until the returned disposer is called
 * (or `options.signal` aborts). While any handler is installed, the signal's default action
 * (usually terminating) is replaced. Fails with ERR_INTERPROCESS_UNSUPPORTED for signals that
 * cannot be caught here, saying why.
 */
export function onSignal(signal: SignalName, handler: (signal: SignalName) => void, options: OnSignalOptions = {}): SignalSubscription {
  const name = checkSignal(signal);
  if (typeof handler !== 'function') throw invalidType('handler', 'a function', handler);
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { signal: abortSignal } = options;
  if (abortSignal !== undefined && !(abortSignal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', abortSignal);
  const reason = whyNotCatchable(name);
  if (reason) throw new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', `Cannot listen for ${name} on ${process.platform}: ${reason}.`);
  const listener = () => handler(name);
  let active = !abortSignal?.aborted;
  const dispose = (() => {
    if (active) {
      process.off(name, listener);
      abortSignal?.removeEventListener('abort', dispose);
    }
    active = false;
  }) as SignalSubscription;
  dispose[Symbol.dispose] = dispose;
  if (active) {
    process.on(name, listener);
    abortSignal?.addEventListener('abort', dispose, { once: true });
  }
  return dispose;
}
