/**
 * Who owns a descriptor, at every moment. Every descriptor the addon creates or receives (socket,
 * accept, socketpair, pipe, FIFO open, SCM_RIGHTS) is in the environment's registry of unclaimed
 * descriptors from the syscall on: if the environment (a worker) is torn down before JS gives it
 * an owner, the addon closes it then. It leaves the registry once, to exactly one owner:
 *
 * - an owning Watcher (our Unix sockets and listeners), which claims it in its constructor, in C,
 *   in the same step: there is no moment with two owners or none;
 * - a Node handle (a net.Socket for pipe and FIFO ends and received stream sockets, a net.Server):
 *   {@link handToNode} releases it just before Node's handle is made, so it is never closed twice
 *   (a worker terminated inside Node's constructor can leak that one descriptor);
 * - the user (ReceivedDescriptor.take(), intoFd()), who then closes it;
 * - or nobody: {@link closeFd} takes it out of the registry and closes it in one step.
 *
 * Never `fs.closeSync` on such a descriptor: in a worker, Node tracks the descriptors its own fs
 * opened, warns on closing any other ("closed but not opened in unmanaged mode"), and closes those
 * still tracked when the worker exits, whoever owns the number by then. For the same reason the
 * addon opens FIFOs (openFifo), not fs.openSync: their ends go to net.Socket, which closes them
 * itself. Descriptors that Node's fs opens (lock files) are closed by fs and never handed over.
 */
import { optionalNative, requireNative } from './addon.js';

/** Closes a descriptor the addon made or received (in its registry or not); EBADF if not open. */
export function closeFd(fd: number): void {
  requireNative('Closing a descriptor').closeFd(fd);
}

/** closeFd() for failure paths, where the descriptor may already be gone. */
export function closeFdQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    /* already closed */
  }
}

/**
 * Gives `fd` to the Node handle that `make` creates (a net.Socket or net.Server over it): takes
 * it out of the registry first, and puts it back if `make` throws (the caller then still owns it).
 * A descriptor that was not in the registry (one the user handed us) is left out of it.
 */
export function handToNode<T>(fd: number, make: () => T): T {
  const native = process.platform === 'win32' ? null : optionalNative();
  const held = native?.releaseFd(fd) ?? false;
  try {
    return make();
  } catch (error) {
    if (held) native!.holdFd(fd);
    throw error;
  }
}

/**
 * An owner outside the addon takes `fd`: the user (a raw descriptor returned to them), or a Node
 * handle made right after. Out of the registry.
 */
export function releaseFd(fd: number): void {
  if (process.platform !== 'win32') optionalNative()?.releaseFd(fd);
}
