/**
 * What a descriptor handed to this process is, for every adoption by number (listenFds(),
 * LocalSocketListener.fromFd(), UnixListener.fromFd()): fstat(2) and the socket's SO_TYPE,
 * SO_ACCEPTCONN and address family, read by the addon, and worded for an error that says what the
 * descriptor is and what to adopt it with instead.
 */
import { fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { type NativeDescription, requireNative } from '../native/addon.js';

/** @internal `fd` is a descriptor number (a non-negative int32). */
export function checkFd(fd: unknown): asserts fd is number {
  if (typeof fd !== 'number') throw invalidType('fd', 'a descriptor (a non-negative integer)', fd);
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw invalidArgument('fd', `must be a descriptor (a non-negative integer); got ${fd}`);
}

/** @internal What `fd` is; a typed EBADF (or other system error) if it is not open here. */
export function describeFd(fd: number, what: string): NativeDescription {
  const native = requireNative(what);
  try {
    return native.unixSockets.describe(fd);
  } catch (error) {
    throw fromSystemError(error, `${what}: descriptor ${fd} cannot be examined`, 'Is it open in this process? A service manager passes its descriptors from 3 on (see listenFds()).');
  }
}

const TYPES = ['', 'datagram', 'seqpacket', 'stream'] as const;

/** @internal The socket type of a Unix socket's description, or null. */
export function unixType(d: NativeDescription): 'datagram' | 'seqpacket' | 'stream' | null {
  return d.kind === 'socket' && d.unix ? (TYPES[d.socketType] || null) : null;
}

/** @internal "a listening Unix seqpacket socket", "a FIFO or pipe", "a non-Unix socket (TCP, UDP, ...)". */
export function describeText(d: NativeDescription): string {
  if (d.kind === 'socket') {
    const type = unixType(d);
    if (type === null) return `a ${d.listening ? 'listening ' : ''}socket that is not a Unix domain socket (TCP, UDP, netlink, ...)`;
    if (d.listening) return `a listening Unix ${type} socket`;
    return type === 'datagram' ? 'a Unix datagram socket' : `a connected Unix ${type} socket`;
  }
  switch (d.kind) {
    case 'fifo':
      return 'a FIFO or pipe';
    case 'file':
      return 'a regular file';
    default:
      return `a ${d.kind}`;
  }
}

/** @internal What to adopt a descriptor of this description with. */
export function adoptWith(d: NativeDescription): string {
  const type = unixType(d);
  if (type !== null) {
    if (d.listening) return type === 'stream' ? 'LocalSocketListener.fromFd() or UnixListener.fromFd()' : 'UnixListener.fromFd()';
    return 'unixSocketFromFd()';
  }
  if (d.kind === 'fifo') return 'PipeReceiver.fromFd() or PipeSender.fromFd()';
  if (d.kind === 'socket') return d.listening ? "Node's net.createServer().listen({ fd })" : "Node's net or dgram modules";
  return "Node's fs";
}

/** @internal ERR_INVALID_ARG_VALUE: `fd` is not what `wanted` adopts, and says what it is and what would adopt it. */
export function notA(fd: number, d: NativeDescription, wanted: string): Error {
  return invalidArgument('fd', `(descriptor ${fd}) is ${describeText(d)}, not ${wanted}: adopt it with ${adoptWith(d)}. It is still open and still yours.`);
}
