/**
 * An RpcChannel's requests waiting for their replies, by id: each settled by its reply, its
 * timeout, its AbortSignal, or the channel's close, whichever comes first (a late reply then finds
 * no call and is dropped).
 */
import { InterprocessError, abortError } from '../errors.js';

/** A request waiting for its reply. */
export interface Call {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  timer?: NodeJS.Timeout | undefined;
}

export class PendingCalls {
  readonly #calls = new Map<number, Call>();
  #refed = true;

  /** The call waiting for the reply to `id`. */
  get(id: number): Call | undefined {
    return this.#calls.get(id);
  }

  /** The reply came: the call is taken, then settled by the caller. */
  delete(id: number): void {
    this.#calls.delete(id);
  }

  /**
   * A promise of the reply to request `id`, for `method`; `send` queues the request (if it
   * throws, the promise rejects with that).
   */
  add<R>(id: number, method: string, timeout: number | undefined, signal: AbortSignal | undefined, send: () => void): Promise<R> {
    if (timeout === undefined && signal === undefined) {
      // Settled only by the reply (or the channel's close), which takes the call from the table.
      return new Promise<R>((resolve, reject) => {
        this.#calls.set(id, { resolve: resolve as (value: unknown) => void, reject });
        try {
          send();
        } catch (error) {
          this.#calls.delete(id);
          reject(error);
        }
      });
    }
    return new Promise<R>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const onAbort = () => finish(abortError(signal!));
      const finish = (error: unknown, value?: unknown) => {
        if (settled) return;
        settled = true;
        this.#calls.delete(id);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve(value as R);
        else reject(error);
      };
      if (timeout !== undefined) {
        timer = setTimeout(() => finish(new InterprocessError('ETIMEDOUT', `No reply to '${method}' within ${timeout} ms`)), timeout);
        if (!this.#refed) timer.unref(); // an unref()ed channel's timeouts do not hold the process either
      }
      this.#calls.set(id, { resolve: (value) => finish(undefined, value), reject: (error) => finish(error), timer });
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        // A failure after this ends the channel, and its 'close' fails every pending call.
        send();
      } catch (error) {
        finish(error);
      }
    });
  }

  /** The channel closed: every call fails with `error`. */
  failAll(error: unknown): void {
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    for (const call of calls) {
      clearTimeout(call.timer);
      call.reject(error);
    }
  }

  /** Whether the timeouts hold the event loop (see RpcChannel.unref). */
  ref(keepAlive: boolean): void {
    this.#refed = keepAlive;
    for (const call of this.#calls.values()) {
      if (keepAlive) call.timer?.ref();
      else call.timer?.unref();
    }
  }
}
