/**
 * The delivery of accepted connections, shared by every listener (through the base in
 * listener.ts): to `'connection'` listeners if there are any, otherwise to one async iterator,
 * queued until taken. Ending disposes of connections queued but never taken and ends iteration.
 */
import { InterprocessError } from './errors.js';

interface Waiter<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: unknown): void;
}

/** What the queue needs of its listener: its 'connection' and 'error' events. */
export interface QueueOwner<T> {
  /** Emits 'connection' if anyone listens; false if nobody does. */
  emitConnection(connection: T): boolean;
  /** Whether anyone listens for 'error'. */
  hasErrorListeners(): boolean;
  /** Emits 'error' (which throws, as Node's rule is, when nobody listens). */
  emitError(error: InterprocessError): void;
}

export class AcceptQueue<T> {
  readonly #owner: QueueOwner<T>;
  readonly #dispose: (connection: T) => void;
  readonly #queue: T[] = [];
  #waiter: Waiter<T> | null = null;
  #ended = false;

  /** `dispose` ends a connection nobody took. */
  constructor(owner: QueueOwner<T>, dispose: (connection: T) => void) {
    this.#owner = owner;
    this.#dispose = dispose;
  }

  deliver(connection: T): void {
    if (this.#ended) return this.#dispose(connection); // closed meanwhile: nobody will take it
    if (this.#owner.emitConnection(connection)) return;
    if (this.#waiter) {
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
    if (this.#waiter && !this.#owner.hasErrorListeners()) {
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter.reject(error);
    } else {
      this.#owner.emitError(error);
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

  /**
   * Accepted connections, in order. Leaving the loop early calls `close` when it is given (the
   * listener's close), and otherwise leaves what is queued for the next loop.
   */
  iterator(close: (() => Promise<void>) | null): AsyncIterableIterator<T> {
    const iterator: AsyncIterableIterator<T> = {
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
        if (close) await close();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}

/**
 * Emits 'close' on the next tick (or once `stopped` resolves: what accepts is really gone) and
 * resolves then: what every close() of ours returns.
 */
export function closedSoon(owner: { emit(event: 'close'): boolean }, stopped?: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const emit = () => {
      owner.emit('close');
      resolve();
    };
    if (stopped) void stopped.then(emit);
    else process.nextTick(emit);
  });
}
