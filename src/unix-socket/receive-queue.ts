/**
 * The receive side's queues: messages (and receive errors, in their place) read ahead for
 * receive(), and the receive() calls waiting for one.
 */
import { abortError } from '../errors.js';
import { compaction } from './queue-head.js';
import type { UnixMessage } from './types.js';

interface Waiter {
  resolve(message: UnixMessage | null): void;
  reject(error: unknown): void;
}

/** @internal See the module comment. */
export class ReceiveQueue {
  #items: Array<UnixMessage | Error> = [];
  #head = 0;
  #waiters: Waiter[] = [];

  /** Items read ahead and not taken. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** receive() calls waiting. */
  get waiting(): number {
    return this.#waiters.length;
  }

  push(item: UnixMessage | Error): void {
    this.#items.push(item);
  }

  /** The next item read ahead (check length first). */
  shift(): UnixMessage | Error {
    const item = this.#items[this.#head++]!;
    const step = compaction(this.#head, this.#items.length);
    if (step === 'reset') this.#items = [];
    else if (step === 'splice') this.#items.splice(0, this.#head);
    if (step !== null) this.#head = 0;
    return item;
  }

  /** A receive() that waits for the next item, until `signal` aborts. */
  wait(signal: AbortSignal | undefined): Promise<UnixMessage | null> {
    return new Promise<UnixMessage | null>((resolve, reject) => {
      if (signal === undefined) {
        this.#waiters.push({ resolve, reject });
        return;
      }
      const waiter: Waiter = {
        resolve: (message) => (signal.removeEventListener('abort', onAbort), resolve(message)),
        reject: (error) => (signal.removeEventListener('abort', onAbort), reject(error)),
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        waiter.reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Hands `item` to the first waiting receive(); false when none waits. */
  give(item: UnixMessage | Error): boolean {
    const waiter = this.#waiters.shift();
    if (waiter === undefined) return false;
    if (item instanceof Error) waiter.reject(item);
    else waiter.resolve(item);
    return true;
  }

  /** Every waiting receive() gets null (the end, or close). */
  end(): void {
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(null);
  }

  /** Drops what was read ahead, closing its descriptors (close). */
  clear(): void {
    for (const item of this.#items.splice(this.#head)) if (!(item instanceof Error)) for (const d of item.fds) d.close();
    this.#items = [];
    this.#head = 0;
  }
}
