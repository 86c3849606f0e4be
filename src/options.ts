/**
 * The option checks every primitive shares, written once: the options object itself, `signal`,
 * `backlog`, `allowHalfOpen` and a socket file's `mode`. Each throws Node's argument errors
 * (TypeError or RangeError, still InterprocessError) naming the option.
 */
import { invalidArgument, invalidType } from './errors.js';
import type { LocalSocketName } from './local-socket/name.js';

/** How a socket is bound to a filesystem name: options of every listener and of bindDatagram(). */
export interface BindOptions {
  /** Permissions of the socket file (e.g. 0o600). Socket-file names only. */
  mode?: number;
  /** Replace a stale socket file that nothing is bound to (default true). Never removes a non-socket. */
  takeOver?: boolean;
}

/** @internal `options` is an object (undefined is the caller's default, so not seen here). */
export function checkOptionsObject(options: unknown): asserts options is object {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
}

/** @internal `options.signal` is an AbortSignal or absent. */
export function checkSignal(signal: unknown): asserts signal is AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
}

/** @internal `options.backlog` is a non-negative integer or absent. */
export function checkBacklog(backlog: unknown): asserts backlog is number | undefined {
  if (backlog !== undefined && (!Number.isInteger(backlog) || (backlog as number) < 0)) throw invalidArgument('options.backlog', `must be a non-negative integer; got ${String(backlog)}`);
}

/** @internal `options.allowHalfOpen` is a boolean or absent. */
export function checkAllowHalfOpen(allowHalfOpen: unknown): asserts allowHalfOpen is boolean | undefined {
  if (allowHalfOpen !== undefined && typeof allowHalfOpen !== 'boolean') throw invalidType('options.allowHalfOpen', 'a boolean', allowHalfOpen);
}

/**
 * @internal `options.mode` is permission bits (0 to 0o777), and `name` has a socket file for
 * them to apply to; absent is fine.
 */
export function checkMode(mode: unknown, name: LocalSocketName): asserts mode is number | undefined {
  if (mode === undefined) return;
  if (!Number.isInteger(mode) || (mode as number) < 0 || (mode as number) > 0o777) throw invalidArgument('options.mode', `must be a permission mode from 0 to 0o777; got ${String(mode)}`);
  if (name.path === null) {
    throw invalidArgument('options.mode', `applies only to names with a socket file; ${name} has none (abstract names and pipes have no file permissions). Check peerCredentials() of each connection instead.`);
  }
}
