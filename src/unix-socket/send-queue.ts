/**
 * The send queue of a Unix socket: messages in parallel arrays that the native send reads from
 * the head on (no object per message), each with the promise its send() returned. flush() moves
 * as much as the kernel takes now and says what to wait for.
 */
import { type InterprocessError, abortError, fromSystemError } from '../errors.js';
import type { LocalSocketName } from '../local-socket/name.js';
import { nameFromAddress } from './address.js';
import { PACK_MAX, sockets } from './native-state.js';
import { compaction } from './queue-head.js';
import type { UnixSocketType } from './types.js';

// Send errors after which nothing more can go on this connection.
const CONNECTION_LOST = new Set(['EPIPE', 'ECONNRESET', 'ENOTCONN', 'EBADF']);
// Send errors that clear by themselves when the receiver catches up, with no readiness to wait for.
const RETRY_LATER = new Set(['ENOBUFS', 'ENOMEM']);

interface Settle {
  resolve(): void;
  reject(error: unknown): void;
}

/** @internal What flush() stopped for: nothing left, the socket's writability, or a short timer. */
export type FlushResult = 'empty' | 'writable' | 'timer';

/** @internal See the module comment. */
export class SendQueue {
  readonly #type: UnixSocketType;
  readonly #typeNumber: number;
  #datas: Uint8Array[] = [];
  #addresses: Array<Buffer | null> | null = null;
  #fdLists: Array<Int32Array | null> | null = null;
  /** SCM_CREDENTIALS per message (pid, uid, gid), or null for none. */
  #credLists: Array<Int32Array | null> | null = null;
  #settle: Settle[] = [];
  #head = 0;
  /** The head message was partly taken by the kernel (a stream): it cannot be cancelled. */
  #partial = false;
  /** How many messages to offer the kernel at once: about what it took last time. */
  #batch = 64;

  constructor(type: UnixSocketType, typeNumber: number) {
    this.#type = type;
    this.#typeNumber = typeNumber;
  }

  /** Messages waiting. */
  get length(): number {
    return this.#datas.length - this.#head;
  }

  /** Queues a message; the promise settles when the kernel has it (or it fails, or is cancelled). */
  push(bytes: Uint8Array, address: Buffer | null, fds: Int32Array | null, credentials: Int32Array | null, signal: AbortSignal | undefined): Promise<void> {
    const index = this.#datas.length;
    this.#datas.push(bytes);
    if (address !== null || this.#addresses !== null) {
      this.#addresses ??= new Array<Buffer | null>(index).fill(null);
      this.#addresses.push(address);
    }
    if (fds !== null || this.#fdLists !== null) {
      this.#fdLists ??= new Array<Int32Array | null>(index).fill(null);
      this.#fdLists.push(fds);
    }
    if (credentials !== null || this.#credLists !== null) {
      this.#credLists ??= new Array<Int32Array | null>(index).fill(null);
      this.#credLists.push(credentials);
    }
    return new Promise<void>((resolve, reject) => {
      if (signal === undefined) {
        this.#settle.push({ resolve, reject });
        return;
      }
      const settle: Settle = {
        resolve: () => (signal.removeEventListener('abort', onAbort), resolve()),
        reject: (error) => (signal.removeEventListener('abort', onAbort), reject(error)),
      };
      const onAbort = () => this.#cancel(settle, signal);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#settle.push(settle);
    });
  }

  /** An aborted send: out of the queue unless the kernel has part of it already. */
  #cancel(settle: Settle, signal: AbortSignal): void {
    const i = this.#settle.indexOf(settle, this.#head);
    if (i < 0 || (i === this.#head && this.#partial)) return;
    this.#datas.splice(i, 1);
    this.#settle.splice(i, 1);
    this.#addresses?.splice(i, 1);
    this.#fdLists?.splice(i, 1);
    this.#credLists?.splice(i, 1);
    settle.reject(abortError(signal));
    this.compact();
  }

  /** Waits for the last message queued now to settle (at once when none is). */
  settled(): Promise<void> {
    const last = this.#settle[this.#settle.length - 1];
    if (last === undefined || this.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const { resolve: done, reject } = last;
      last.resolve = () => (done(), resolve());
      last.reject = (e) => (reject(e), resolve());
    });
  }

  /** Sends what the kernel takes now, from the head on. `peer`: the default peer's name, for errors. */
  flush(fd: number, peer: LocalSocketName | null | undefined, stopped: () => boolean): FlushResult {
    const { native, progress, packed, spans } = sockets('Unix sockets');
    while (!stopped() && this.#head < this.#datas.length) {
      const count = Math.min(this.#batch, this.#datas.length - this.#head);
      // Small messages go by copy into `packed` (see PACK_MAX); the others straight from their memory.
      let offset = 0;
      for (let i = 0, k = this.#head; i < count; i++, k++) {
        const data = this.#datas[k]!;
        if (data.length <= PACK_MAX) {
          packed.set(data, offset);
          spans[2 * i] = offset;
          spans[2 * i + 1] = data.length;
          offset += data.length;
        } else {
          spans[2 * i] = -1;
        }
      }
      let sent: number;
      try {
        sent = native.send(fd, this.#typeNumber, this.#datas, this.#head, count, this.#addresses, this.#fdLists, progress, packed, spans, this.#credLists);
      } catch (error) {
        if (RETRY_LATER.has((error as NodeJS.ErrnoException).code ?? '')) {
          this.compact();
          return 'timer'; // the kernel is short of buffers: try again shortly
        }
        this.#failed(error, peer);
        continue;
      }
      for (let i = 0; i < sent; i++) this.settleHead(null);
      // Offer the kernel about what it took last time: building headers it refuses costs time.
      this.#batch = sent === count ? Math.min(this.#batch * 2, native.SEND_BATCH) : Math.max(8, sent * 2);
      if (progress[0]! > 0) {
        // A stream took part of the message: the rest goes next, its descriptors already went
        // (its credentials go again: the kernel does not join bytes sent with different ones).
        this.#datas[this.#head] = this.#datas[this.#head]!.subarray(progress[0]);
        if (this.#fdLists) this.#fdLists[this.#head] = null;
        this.#partial = true;
      }
      if (sent < count && this.#head < this.#datas.length) {
        this.compact();
        // Linux: an unconnected datagram socket polls writable even when the receiver is full.
        return this.#type === 'datagram' && this.#addresses?.[this.#head] != null ? 'timer' : 'writable';
      }
    }
    this.compact();
    return 'empty';
  }

  /** The head message failed: reject it (and, if the connection is gone, everything queued). */
  #failed(error: unknown, peer: LocalSocketName | null | undefined): void {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const to = this.#addresses?.[this.#head];
    const name = to ? nameFromAddress(to) : peer;
    const where = name ? ` to ${name}` : '';
    const hint =
      code === 'ENOENT' || code === 'ECONNREFUSED'
        ? 'Nothing is bound there: start the receiver first.'
        : code === 'EMSGSIZE'
          ? `The message (${this.#datas[this.#head]!.length} bytes) is larger than the socket's send buffer allows (SO_SNDBUF; about 208 KiB by default on Linux).`
          : code === 'EBADF'
            ? 'A descriptor in options.fds is not open.'
            : code === 'EPERM' && this.#credLists?.[this.#head]
              ? 'The kernel refused the credentials in options.credentials: a process may send only its own pid, uid and gid (real, effective or saved), unless it has CAP_SYS_ADMIN (another pid), CAP_SETUID (another uid) or CAP_SETGID (another gid).'
              : code === 'ESRCH' && this.#credLists?.[this.#head]
                ? 'No process has the pid in options.credentials.'
                : undefined;
    const failure = fromSystemError(error, `Cannot send a ${this.#type} message${where}`, hint, name ? { address: name.address } : {});
    if (CONNECTION_LOST.has(code) && !(code === 'EBADF' && this.#fdLists?.[this.#head])) this.failAll(failure);
    else this.settleHead(failure);
  }

  /** Settles the head message: sent (null) or failed. */
  settleHead(error: InterprocessError | null): void {
    const i = this.#head++;
    const settle = this.#settle[i]!;
    this.#datas[i] = undefined as unknown as Uint8Array;
    if (this.#addresses) this.#addresses[i] = null;
    if (this.#fdLists) this.#fdLists[i] = null;
    if (this.#credLists) this.#credLists[i] = null;
    this.#settle[i] = undefined as unknown as Settle;
    this.#partial = false;
    if (error === null) settle.resolve();
    else settle.reject(error);
  }

  /** Rejects everything queued with `error`. */
  failAll(error: InterprocessError): void {
    while (this.#head < this.#datas.length) this.settleHead(error);
    this.compact();
  }

  /** Drops what was settled (see compaction). */
  compact(): void {
    const step = compaction(this.#head, this.#datas.length);
    if (step === 'reset') {
      this.#datas = [];
      this.#settle = [];
      this.#addresses = null;
      this.#fdLists = null;
      this.#credLists = null;
    } else if (step === 'splice') {
      this.#datas.splice(0, this.#head);
      this.#settle.splice(0, this.#head);
      this.#addresses?.splice(0, this.#head);
      this.#fdLists?.splice(0, this.#head);
      this.#credLists?.splice(0, this.#head);
    }
    if (step !== null) this.#head = 0;
  }
}
