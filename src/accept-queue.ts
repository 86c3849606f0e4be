/**
 * The delivery of accepted connections, shared by every listener: to `'connection'` listeners if
 * there are any, otherwise to one async iterator, queued until taken. Closing ends the iteration
 * and disposes of connections queued but never taken.
 */
import type { EventEmitter } from 'node:events';
import { InterprocessError, abortError } from './errors.js';

interface Waiter<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: unknown): void;
}

export class AcceptQueue<T> {
  readonly #owner: EventEmitter;
  readonly #dispose: (connection: T) => void;
  readonly #queue: T[] = [];
  #waiter: Waiter<T> | null = null;
  #ended = false;

  /** `owner` emits 'connection' and 'error'; `dispose` ends a connection nobody took. */
  constructor(owner: EventEmitter, dispose: (connection: T) => void) {
    this.#owner = owner;
    this.#dispose = dispose;
  }

  deliver(connection: T): void {
    if (this.#ended) return this.#dispose(connection); // closed meanwhile: nobody will take it
    if (this.#owner.listenerCount('connection') > 0) {
      this.#owner.emit('connection', connection);
    } else if (this.#waiter) {
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter.resolve({ value: connection, done: false });
    } else {
      this.#queue.push(connection);
    }
  }

  /** Whether an iterator waits for the next connection. */
  get waiting(): boolean {
    return this.#waiter !== null;
  }

  /** To the iterator if it waits and nobody listens for 'error'; otherwise an 'error' event. */
  fail(error: InterprocessError): void {
    if (this.#waiter && this.#owner.listenerCount('error') === 0) {
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter.reject(error);
    } else {
      this.#owner.emit('error', error);
    }
  }

  /** Ends iteration; connections queued but never taken are disposed of. */
  end(): void {
    this.#ended = true;
    for (const connection of this.#queue.splice(0)) this.#dispose(connection);
    if (this.#waiter) {
      this.#waiter.resolve({ value: undefined, done: true });
      this.#waiter = null;
    }
  }

  /** Accepted connections, in order; leaving the loop calls `close`. */
  iterator(close: () => Promise<void>): AsyncIterator<T> {
    return {
      next: () => {
        const queued = this.#queue.shift();
        if (queued !== undefined) return Promise.resolve({ value: queued, done: false });
        if (this.#ended) return Promise.resolve({ value: undefined, done: true });
        if (this.#waiter) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'This listener is already being iterated; take connections from one loop at a time.'));
        return new Promise((resolve, reject) => {
          this.#waiter = { resolve, reject };
        });
      },
      return: async () => {
        await close();
        return { value: undefined, done: true };
      },
    };
  }
}

/**
 * Emits 'close' on the next tick (or once `stopped` resolves: what accepts is really gone) and
 * resolves then: what every close() of ours returns.
 */
export function closedSoon(owner: EventEmitter, stopped?: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const emit = () => {
      owner.emit('close');
      resolve();
    };
    if (stopped) void stopped.then(emit);
    else process.nextTick(emit);
  });
}

/**
 * Closes `listener` when `signal` aborts; if it already has, closes it now and throws ABORT_ERR.
 * Returns the listener: the end of every listen().
 */
export async function closeOnAbort<T extends { close(): Promise<void> }>(listener: T, signal: AbortSignal | undefined): Promise<T> {
  if (signal) {
    if (signal.aborted) {
      await listener.close();
      throw abortError(signal);
    }
    signal.addEventListener('abort', () => void listener.close(), { once: true });
  }
  return listener;
}
