/**
 * A Channel's received messages that no 'message' listener took, waiting for iteration, and the
 * iterators over them: one loop at a time; leaving a loop early closes the channel unless
 * closeOnReturn is false, in which case what the loop did not read waits for the next one.
 */
import { InterprocessError } from '../errors.js';
import type { ReceivedDescriptor } from '../unix-socket/descriptors.js';
import { NO_FDS, kept, release } from './fds.js';
import { type ChannelIteratorOptions, type ChannelMessage, closeOnReturnOf } from './types.js';

interface Waiter {
  resolve(result: ChannelMessage<unknown> | null): void;
  reject(error: unknown): void;
  /** The iterator that waits. */
  owner: object;
}

/** What the inbox asks of its channel. */
export interface InboxOwner {
  /** The error that ended the channel, if one did. */
  readonly error: InterprocessError | null;
  /** No more messages will come (the peer ended, or the channel is destroyed). */
  readonly ended: boolean;
  /** A message was taken (the channel may read on). */
  taken(): void;
  close(): Promise<void>;
}

export class Inbox<T> {
  readonly #owner: InboxOwner;
  readonly #items: Array<ChannelMessage<T>> = [];
  #waiter: Waiter | null = null;
  /** The message last handed to an iterator, whose descriptors are closed when it asks again. */
  #handedOut: readonly ReceivedDescriptor[] = NO_FDS;

  constructor(owner: InboxOwner) {
    this.#owner = owner;
  }

  /** Messages waiting. */
  get length(): number {
    return this.#items.length;
  }

  /** Whether a loop waits for the next message. */
  get waiting(): boolean {
    return this.#waiter !== null;
  }

  /** To the loop that waits, if one does, else held here. Descriptors stay open until it moves on. */
  put(message: T, fds: readonly ReceivedDescriptor[]): void {
    if (fds.length > 0) kept.add(fds); // past a frameHook's return (see Channel[deliver])
    if (this.#waiter !== null) {
      const waiter = this.#waiter;
      this.#waiter = null;
      this.#handedOut = fds;
      waiter.resolve({ message, fds });
    } else {
      this.#items.push({ message, fds });
    }
  }

  /** The channel ended: a loop waiting with nothing left to read ends (or throws its error). */
  wake(): void {
    if (this.#waiter && this.#items.length === 0 && this.#owner.ended) {
      const waiter = this.#waiter;
      this.#waiter = null;
      if (this.#owner.error) waiter.reject(this.#owner.error);
      else waiter.resolve(null);
    }
  }

  #releaseHandedOut(): void {
    if (this.#handedOut.length > 0) {
      release(this.#handedOut);
      this.#handedOut = NO_FDS;
    }
  }

  #next(owner: object): Promise<ChannelMessage<T> | null> {
    this.#releaseHandedOut();
    if (this.#items.length > 0) {
      const item = this.#items.shift()!;
      this.#owner.taken();
      this.#handedOut = item.fds;
      return Promise.resolve(item);
    }
    if (this.#owner.error) return Promise.reject(this.#owner.error);
    if (this.#owner.ended) return Promise.resolve(null);
    if (this.#waiter) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'This channel is already being iterated; take messages from one loop at a time.'));
    return new Promise((resolve, reject) => (this.#waiter = { resolve: resolve as Waiter['resolve'], reject, owner }));
  }

  /** Leaving a loop early: the last message's descriptors are closed; then close(), or the channel stays open. */
  async #return(owner: object, closeOnReturn: boolean): Promise<void> {
    this.#releaseHandedOut();
    if (closeOnReturn) {
      await this.#owner.close().catch(() => {});
    } else if (this.#waiter?.owner === owner) {
      // A next() of this iterator still waits: it ends, and the messages to come stay here.
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter.resolve(null);
    }
  }

  /** An iterator over the messages, each as `map` makes it. */
  iterator<V>(options: ChannelIteratorOptions | undefined, map: (item: ChannelMessage<T>) => V): AsyncIterableIterator<V> {
    const closeOnReturn = closeOnReturnOf(options);
    const owner = {};
    let finished = false;
    const iterator: AsyncIterableIterator<V> = {
      next: () => {
        if (finished) return Promise.resolve({ value: undefined, done: true });
        return this.#next(owner).then((item): IteratorResult<V> => {
          if (item !== null) return { value: map(item), done: false };
          finished = true;
          return { value: undefined, done: true };
        });
      },
      return: async () => {
        finished = true;
        await this.#return(owner, closeOnReturn);
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Messages only: descriptors that came with one are closed at once (withFds() gives them). */
  messages(options: ChannelIteratorOptions | undefined): AsyncIterableIterator<T> {
    return this.iterator(options, (item) => {
      if (item.fds.length > 0) {
        release(item.fds);
        this.#handedOut = NO_FDS;
      }
      return item.message;
    });
  }
}
