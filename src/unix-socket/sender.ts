/**
 * The send side of a Unix socket: the send queue (send-queue.ts), flushed once per tick and again
 * when the socket is writable (or, where the kernel gives no readiness to wait for, on a short
 * timer), and drain() for senders that do not await each send.
 */
import type { EventEmitter } from 'node:events';
import { type InterprocessError, abortError } from '../errors.js';
import type { LocalSocketName } from '../local-socket/name.js';
import { SendQueue } from './send-queue.js';
import type { UnixSocketType } from './types.js';

/** @internal What the send side needs of its socket. */
export interface SenderHost {
  readonly type: UnixSocketType;
  readonly typeNumber: number;
  readonly fd: number;
  readonly sendHighWaterMark: number;
  /** The socket, which emits 'drain'. */
  readonly emitter: EventEmitter;
  isDestroyed(): boolean;
  /** The default peer's name, for errors. */
  peer(): LocalSocketName | null | undefined;
  /** What is wanted changed: start or stop polling. */
  updateWatcher(): void;
}

/** @internal See the module comment. */
export class Sender {
  readonly #host: SenderHost;
  readonly #queue: SendQueue;
  #flushQueued = false;
  #writeWait: 'writable' | 'timer' | null = null;
  #drainWaiters: Array<() => void> = [];

  constructor(host: SenderHost) {
    this.#host = host;
    this.#queue = new SendQueue(host.type, host.typeNumber);
  }

  /** Messages waiting. */
  get length(): number {
    return this.#queue.length;
  }

  /** Whether the socket should poll for writability. */
  get waitsForWritable(): boolean {
    return this.#writeWait === 'writable';
  }

  /** Queues a message (see SendQueue.push) and flushes at the end of the tick. */
  push(bytes: Uint8Array, address: Buffer | null, fds: Int32Array | null, credentials: Int32Array | null, signal: AbortSignal | undefined): Promise<void> {
    const promise = this.#queue.push(bytes, address, fds, credentials, signal);
    if (!this.#flushQueued && this.#writeWait === null) {
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.#flush();
      });
    }
    return promise;
  }

  /** The socket polled writable. */
  onWritable(): void {
    if (this.#writeWait !== 'writable') return;
    this.#writeWait = null;
    this.#flush();
  }

  #flush(): void {
    const host = this.#host;
    const result = this.#queue.flush(host.fd, host.peer(), () => host.isDestroyed());
    if (result === 'empty') {
      this.#writeWait = null;
    } else {
      this.#writeWait = result;
      if (result === 'timer') {
        setTimeout(() => {
          this.#writeWait = null;
          this.#flush();
        }, 1);
      }
    }
    this.#sent();
    host.updateWatcher();
  }

  /** Messages left the queue: resolve drain() once it is at most half full. */
  #sent(): void {
    if (this.#drainWaiters.length > 0 && this.#queue.length * 2 <= this.#host.sendHighWaterMark) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
      this.#host.emitter.emit('drain');
    }
  }

  /** Rejects everything queued with `error` (the connection is gone, or the socket destroyed). */
  failAll(error: InterprocessError): void {
    this.#queue.failAll(error);
    this.#sent();
  }

  /** Waits for the last message queued now to settle (at once when none is). */
  settled(): Promise<void> {
    return this.#queue.settled();
  }

  /** See UnixSocket.drain(). */
  drain(signal: AbortSignal | undefined): Promise<void> {
    if (this.#host.isDestroyed() || this.#queue.length * 2 <= this.#host.sendHighWaterMark) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      if (signal === undefined) {
        this.#drainWaiters.push(resolve);
        return;
      }
      const onAbort = () => {
        const i = this.#drainWaiters.indexOf(done);
        if (i >= 0) this.#drainWaiters.splice(i, 1);
        reject(abortError(signal));
      };
      const done = () => (signal.removeEventListener('abort', onAbort), resolve());
      signal.addEventListener('abort', onAbort, { once: true });
      this.#drainWaiters.push(done);
    });
  }

  /** The socket closed: drain() waits no more. */
  close(error: InterprocessError): void {
    this.#queue.failAll(error);
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }
}
