/**
 * Reading one batch of a Unix socket: the native receive, then each message built from the batch's
 * metadata (see metadata.ts) and handed on, in order. Received bytes are views of the shared pool.
 */
import { nameFromAddress } from './address.js';
import { ReceivedDescriptor } from './descriptors.js';
import { FIELD, FLAGS, HEADER, credentialsAt, damageError, recordOf } from './metadata.js';
import { advancePool, sockets } from './native-state.js';
import type { MessageCredentials, UnixMessage } from './types.js';

const EMPTY: readonly ReceivedDescriptor[] = Object.freeze([]);
const { LENGTH, ADDRESS_LENGTH, FD_COUNT, FLAGS: FLAGS_AT } = FIELD;

/** @internal What the reader needs of its socket. */
export interface ReadTarget {
  readonly fd: number;
  readonly typeNumber: number;
  readonly maxFds: number;
  /** The native receive's mark (see marks.ts). */
  readonly mark: number;
  /** Connected sockets have no use for each message's sender address. */
  readonly connected: boolean;
  /** Checked before each message: a listener may close the socket in the middle of a batch. */
  isClosed(): boolean;
  /** Datagram receivers with an `allow` rule: messages pass refuses() first. */
  readonly checksAccess: boolean;
  /** True when the `allow` rule refuses the sender (the message is dropped). */
  refuses(credentials: MessageCredentials | null): boolean;
  deliver(item: UnixMessage | Error): void;
}

/**
 * Receives one batch and delivers it. Returns how many messages it held (-1: nothing waited) and
 * whether the end followed them. Throws the native receive's error.
 */
export function readBatch(target: ReadTarget): { count: number; eof: boolean } {
  const state = sockets('Unix sockets');
  const { native, meta, fds, pool } = state;
  const buffer = native.receive(target.fd, target.typeNumber, meta, fds, target.maxFds, pool, state.poolOffset, target.mark);
  if (buffer === undefined) return { count: -1, eof: false };
  const count = meta[HEADER.COUNT]!;
  const eof = meta[HEADER.EOF] === 1;
  const header = native.META_HEADER;
  const stride = native.META_STRIDE;
  let offset = buffer === pool ? state.poolOffset : 0;
  let fdIndex = 0;
  for (let i = 0; i < count; i++) {
    const m = recordOf(header, stride, i);
    if (target.isClosed()) {
      // Closed by a listener of this batch: the rest is not delivered, and its descriptors close now.
      let end = fdIndex;
      for (let k = i; k < count; k++) end += meta[recordOf(header, stride, k) + FD_COUNT]!;
      for (let k = fdIndex; k < end; k++) new ReceivedDescriptor(fds[k]!).close();
      break;
    }
    const length = meta[m + LENGTH]!;
    const addressLength = meta[m + ADDRESS_LENGTH]!;
    const fdCount = meta[m + FD_COUNT]!;
    const flags = meta[m + FLAGS_AT]!;
    const data = buffer.subarray(offset, offset + length);
    offset += length;
    const from = addressLength > 0 && !target.connected ? nameFromAddress(buffer.subarray(offset, offset + addressLength)) : null;
    offset += addressLength;
    let received = EMPTY;
    if (fdCount > 0) {
      const list: ReceivedDescriptor[] = [];
      for (let k = 0; k < fdCount; k++) list.push(new ReceivedDescriptor(fds[fdIndex++]!));
      received = list;
    }
    const credentials = flags & FLAGS.CREDENTIALS ? credentialsAt(meta, m) : null;
    if (target.checksAccess && target.refuses(credentials)) {
      for (const d of received) d.close();
    } else if (flags & (FLAGS.TRUNCATED | FLAGS.CTRUNC)) {
      for (const d of received) d.close();
      target.deliver(damageError(meta, m, target.maxFds, { data, from, credentials }));
    } else {
      target.deliver({ data, from, fds: received, credentials });
    }
  }
  if (buffer === pool) advancePool(state, offset);
  return { count, eof };
}
