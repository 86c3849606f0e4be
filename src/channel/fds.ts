/**
 * Which received descriptors a Channel closes, and when: those of a message are closed once its
 * listeners return (or its frameHook does), unless kept for later (RpcChannel's async handlers,
 * messages waiting for iteration), in which case whoever kept them releases them.
 */
import { type ReceivedDescriptor, closeUnclaimed } from '../unix-socket/descriptors.js';

/** @internal A message without descriptors. */
export const NO_FDS: readonly ReceivedDescriptor[] = Object.freeze([]);

/** @internal Descriptor lists kept past the return of the listener or hook they were given to. */
export const kept = new WeakSet<readonly ReceivedDescriptor[]>();

/** @internal A 'message' listener keeps `fds` open after it returns; it must release() them later. */
export function keepFds(fds: readonly ReceivedDescriptor[]): void {
  if (fds.length > 0) kept.add(fds);
}

/** @internal Closes the descriptors of a message that nobody took. */
export function release(fds: readonly ReceivedDescriptor[]): void {
  for (const d of fds) d[closeUnclaimed]();
}
