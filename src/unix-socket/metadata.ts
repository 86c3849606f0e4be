/**
 * The metadata the native receive writes for a batch (native/unix/receive.c): a header, then one
 * record of META_STRIDE ints per message. Named here once; the reader uses only these names.
 */
import { InterprocessError } from '../errors.js';
import type { MessageCredentials } from './types.js';

/** @internal The header's ints. */
export const HEADER = Object.freeze({ COUNT: 0, EOF: 1 } as const);

/** @internal Each message's ints, from the start of its record. */
export const FIELD = Object.freeze({
  /** Bytes of data received. */
  LENGTH: 0,
  /** Bytes the message really had (more than LENGTH when truncated). */
  REAL_LENGTH: 1,
  /** Bytes of the sender's address, after the data. */
  ADDRESS_LENGTH: 2,
  /** Descriptors received with it. */
  FD_COUNT: 3,
  /** FLAGS bits. */
  FLAGS: 4,
  /** With FLAGS.CREDENTIALS: the sender's pid, uid, gid. */
  PID: 5,
  UID: 6,
  GID: 7,
} as const);

/** @internal The FLAGS bits. */
export const FLAGS = Object.freeze({
  /** The message was larger than its slot. */
  TRUNCATED: 1,
  /** Its descriptors were cut (MSG_CTRUNC, or more than maxFds); those that came were closed. */
  CTRUNC: 2,
  /** It carries the sender's credentials. */
  CREDENTIALS: 4,
  /** With CTRUNC: the kernel could not install a descriptor (EMFILE). */
  FD_LIMIT: 8,
} as const);

/** @internal The start of message `i`'s record. */
export function recordOf(header: number, stride: number, i: number): number {
  return header + i * stride;
}

/** @internal Message `m`'s credentials (its FLAGS say it carries them). */
export function credentialsAt(meta: Int32Array, m: number): MessageCredentials {
  return Object.freeze({ pid: meta[m + FIELD.PID]!, uid: meta[m + FIELD.UID]! >>> 0, gid: meta[m + FIELD.GID]! >>> 0 });
}

/** @internal The receive error for a damaged message `m`, carrying what did arrive. */
export function damageError(meta: Int32Array, m: number, maxFds: number, details: Pick<InterprocessError, 'data' | 'from' | 'credentials'>): InterprocessError {
  const flags = meta[m + FIELD.FLAGS]!;
  const extra = { syscall: 'recvmsg', ...details };
  if (flags & FLAGS.TRUNCATED) {
    return new InterprocessError('EMSGSIZE', `A ${meta[m + FIELD.REAL_LENGTH]!}-byte message arrived truncated to ${meta[m + FIELD.LENGTH]!} bytes: behind others in one batch, interprocess receives messages of up to 256 KiB whole (only the first in line may be larger). The rest of it is lost; have the sender keep messages under 256 KiB.`, extra);
  }
  if (flags & FLAGS.FD_LIMIT) {
    return new InterprocessError('EMFILE', 'A message arrived with descriptors this process could not take: it has as many open as its limit allows (RLIMIT_NOFILE, ulimit -n). The kernel dropped them (MSG_CTRUNC) and those that did arrive were closed. Close descriptors you no longer need, or raise the limit.', extra);
  }
  return new InterprocessError('ERR_INTERPROCESS_CTRUNC', `A message arrived with more descriptors than this socket accepts (maxFds: ${maxFds}); the kernel cut them (MSG_CTRUNC) and those that did arrive were closed. Raise maxFds (up to 253).`, extra);
}
