/** The argument checks and small helpers of UnixSocket's methods. */
import { InterprocessError, abortError, fromSystemError, invalidArgument, invalidType, unsupported } from '../errors.js';
import type { NativeUnixSockets } from '../native/addon.js';
import { type PeerCredentials, unixCredentials } from '../credentials.js';
import { requireNative } from '../native/addon.js';
import { addressOf, resolveName } from './address.js';
import { toDescriptor } from './descriptors.js';
import type { SendOptions, UnixSocketType, UnixWaitOptions } from './types.js';

/** @internal The error of every use of a closed socket. */
export function closedError(doing: string): InterprocessError {
  return new InterprocessError('ERR_INTERPROCESS_CLOSED', `Cannot ${doing}: the socket is closed`);
}

/** @internal An integer option from 0 to `max`, or `fallback` when not given. */
export function positiveInteger(value: unknown, argument: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalidArgument(argument, `must be an integer from 0 to ${max}; got ${String(value)}`);
  }
  return value;
}

/** @internal Checks an optional AbortSignal argument. */
export function checkSignal(signal: unknown, argument: string): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType(argument, 'an AbortSignal', signal);
  return signal;
}

/** @internal The signal of receive() or drain() options. */
export function waitSignal(options: UnixWaitOptions | undefined): AbortSignal | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  return checkSignal(options.signal, 'options.signal');
}

/** @internal send()'s data as bytes. */
export function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw invalidType('data', 'a Buffer, a TypedArray, an ArrayBuffer or a string', data);
}

/** @internal send()'s options, checked. */
export interface CheckedSend {
  readonly address: Buffer | null;
  readonly fds: Int32Array | null;
  /** SCM_CREDENTIALS to send: pid, uid, gid. */
  readonly credentials: Int32Array | null;
  readonly signal: AbortSignal | undefined;
}

const NO_OPTIONS: CheckedSend = Object.freeze({ address: null, fds: null, credentials: null, signal: undefined });

/** @internal send()'s options, checked: where to, which descriptors, which signal. */
export function sendOptions(options: SendOptions | undefined, type: UnixSocketType, maxFds: number): CheckedSend {
  if (options === undefined) return NO_OPTIONS;
  let address: Buffer | null = null;
  let fds: Int32Array | null = null;
  let credentials: Int32Array | null = null;
  let signal: AbortSignal | undefined;
  if (options !== undefined) {
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
    if (options.to !== undefined) {
      if (type !== 'datagram') throw invalidArgument('options.to', `applies to datagram sockets only; this is a ${type} socket`);
      address = addressOf(resolveName(options.to));
    }
    if (options.fds !== undefined) {
      if (options.fds === null || typeof (options.fds as Iterable<unknown>)[Symbol.iterator] !== 'function') throw invalidType('options.fds', 'an array of descriptors', options.fds);
      const list = Array.from(options.fds, (value, i) => toDescriptor(value, `options.fds[${i}]`));
      if (list.length > maxFds) throw invalidArgument('options.fds', `holds ${list.length} descriptors; one message carries at most ${maxFds} (SCM_MAX_FD)`);
      if (list.length > 0) fds = Int32Array.from(list);
    }
    if (options.credentials !== undefined) credentials = sendCredentials(options.credentials);
    signal = checkSignal(options.signal, 'options.signal');
    if (signal?.aborted) throw abortError(signal);
  }
  return { address, fds, credentials, signal };
}

/**
 * The `credentials` option of send() as SCM_CREDENTIALS (pid, uid, gid; null for
 * false): true is this process's pid, effective uid and effective gid. Linux only.
 */
export function sendCredentials(value: unknown): Int32Array | null {
  if (value === false) return null;
  if (value !== true && (value === null || typeof value !== 'object')) throw invalidType('options.credentials', 'true, or an object { pid, uid, gid }', value);
  if (process.platform !== 'linux') {
    throw unsupported('Sending credentials (SCM_CREDENTIALS)', 'only Linux lets a sender attach them. The receiver can tell who is connected with peerCredentials() on every Unix (LOCAL_PEERCRED, getpeereid).');
  }
  if (value === true) return Int32Array.of(process.pid, process.geteuid!(), process.getegid!());
  const given = value as { pid?: unknown; uid?: unknown; gid?: unknown };
  const id = (key: 'pid' | 'uid' | 'gid', max: number): number => {
    const n = given[key];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < (key === 'pid' ? 1 : 0) || n > max) {
      throw invalidArgument(`options.credentials.${key}`, `must be an integer from ${key === 'pid' ? 1 : 0} to ${max}; got ${String(n)}`);
    }
    return n;
  };
  return Int32Array.of(id('pid', 0x7fffffff), id('uid', 0xffffffff), id('gid', 0xffffffff));
}

/** @internal SO_PASSCRED on or off, with a typed error where the OS has none. */
export function passCredentials(native: NativeUnixSockets, fd: number, on: boolean): void {
  try {
    native.setPassCredentials(fd, on);
  } catch (error) {
    const e = fromSystemError(error, 'Cannot pass credentials with messages', 'SCM_CREDENTIALS is Linux only; peerCredentials() tells who is connected on every OS');
    if (e.code === 'EOPNOTSUPP') throw new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', e.message, { cause: error });
    throw e;
  }
}

/** @internal The peer's credentials, read now (or the error saying why there are none), for a connected socket. */
export function readPeer(fd: number, type: UnixSocketType): PeerCredentials | InterprocessError {
  let raw: { pid: number; uid: number; gid: number };
  try {
    raw = requireNative('Reading peer credentials').peerCredentials(fd);
  } catch (error) {
    return fromSystemError(error, 'Cannot read peer credentials');
  }
  if (raw.pid <= 0 && (raw.uid === -1 || raw.uid === 0xffffffff)) {
    return new InterprocessError(
      'ERR_INTERPROCESS_NO_CREDENTIALS',
      type === 'datagram'
        ? 'The kernel records no peer credentials for a datagram socket connected with connect() (only for socket pairs): receive them with each message instead, with { passCredentials: true }'
        : 'The kernel recorded no peer credentials: this socket is not connected',
    );
  }
  return unixCredentials(raw);
}

/** @internal The answer of peerCredentials() on a socket that never had a peer. */
export function noPeer(): InterprocessError {
  return new InterprocessError('ERR_INTERPROCESS_NO_CREDENTIALS', 'This socket never had a peer (an unconnected datagram socket): receive each sender\'s credentials with its messages instead, with { passCredentials: true }');
}
