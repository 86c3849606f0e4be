/**
 * What every listener shares (LocalSocketListener, UnixListener, NamedPipeListener): the
 * `listening` flag, one memoised close(), ref/unref, the `refused` count, the delivery of
 * connections to 'connection' listeners or to async iteration, and disposal. Each subclass says
 * only how it stops accepting and how it holds the event loop open.
 */
import { EventEmitter } from 'node:events';
import type { Refusal } from './access.js';
import { AcceptQueue } from './accept-queue.js';
import type { PeerCredentials } from './credentials.js';
import { type InterprocessError, abortError } from './errors.js';
import type { LocalSocketName } from './local-socket/name.js';

/**
 * The events of every listener, for connections of type `C`:
 * - `'connection'`: an accepted connection (while anyone listens for it; else it waits for
 *   async iteration).
 * - `'refused'`: a peer the `allow` rule refused, closed before anything of it was read: its
 *   credentials (null if they could not be read), and what a predicate threw, if it threw.
 * - `'error'`: accepting failed (a transient failure leaves the listener serving).
 * - `'close'`: the listener has stopped accepting, after close().
 */
export interface ListenerEvents<C> {
  /** An accepted connection. */
  connection: [connection: C];
  /** A refused peer: its credentials (null if unreadable), and what a predicate threw. */
  refused: [credentials: PeerCredentials | null, error?: unknown];
  /** Accepting failed. */
  error: [error: InterprocessError];
  /** The listener has stopped accepting. */
  close: [];
}

/** Options of a listener's `iterator()`. */
export interface ListenerIteratorOptions {
  /**
   * Whether leaving the loop early (break, return, throw) closes the listener (default true, as
   * leaving a loop over a Node Readable destroys it). With false, the listener stays open and
   * connections accepted meanwhile wait for the next loop.
   */
  closeOnReturn?: boolean;
}

/**
 * The base of every listener. Accepted connections go to the `'connection'` event if it has
 * listeners, otherwise to async iteration (`for await (const conn of listener)`), queued until
 * taken. `close()` stops accepting; connections already taken stay open.
 */
export abstract class Listener<C> extends EventEmitter<ListenerEvents<C>> implements AsyncIterable<C>, AsyncDisposable {
  /** The name this listener accepts on. */
  abstract readonly name: LocalSocketName;
  readonly #queue: AcceptQueue<C>;
  #closing: Promise<void> | null = null;
  #refused = 0;

  /** @internal `dispose` ends a connection that was accepted but never taken. */
  protected constructor(dispose: (connection: C) => void) {
    super();
    this.#queue = new AcceptQueue<C>({
      emitConnection: (connection) => this.listenerCount('connection') > 0 && this.emit('connection', connection),
      hasErrorListeners: () => this.listenerCount('error') > 0,
      emitError: (error) => void this.emit('error', error),
    }, dispose);
  }

  /** True until close() is called. */
  get listening(): boolean {
    return this.#closing === null;
  }

  /** How many peers the `allow` rule has refused so far. */
  get refused(): number {
    return this.#refused;
  }

  /**
   * Stops accepting and ends async iteration; connections queued for iteration but never taken
   * are closed, taken ones stay open. Resolves (and emits `'close'`) once nobody can connect
   * through this listener any more. A second call returns the same promise.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    let settle!: (stopped: Promise<void> | void) => void;
    this.#closing = new Promise<void>((resolve) => {
      settle = (stopped) => {
        const emit = () => {
          this.emit('close');
          resolve();
        };
        if (stopped) void stopped.then(emit, emit);
        else process.nextTick(emit);
      };
    });
    let stopped: Promise<void> | void = undefined;
    try {
      stopped = this._stop();
    } finally {
      this.#queue.end();
      settle(stopped);
    }
    return this.#closing;
  }

  /** Lets the process exit while this listener is open (as net.Server's). */
  unref(): this {
    this._ref(false);
    return this;
  }

  /** Undoes unref(): the listener holds the process open again. */
  ref(): this {
    this._ref(true);
    return this;
  }

  /**
   * Accepted connections, in order. Leaving the loop early closes the listener unless
   * `closeOnReturn` is false.
   */
  iterator(options: ListenerIteratorOptions = {}): AsyncIterableIterator<C> {
    const closeOnReturn = options?.closeOnReturn ?? true;
    return this.#queue.iterator(closeOnReturn ? () => this.close() : null);
  }

  /** Accepted connections, in order. Leaving the loop (break, return, throw) closes the listener. */
  [Symbol.asyncIterator](): AsyncIterator<C> {
    return this.iterator();
  }

  /** `await using listener = await listen(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal Stops accepting; resolves once nobody can connect through it any more. Called once. */
  protected abstract _stop(): Promise<void> | void;

  /** @internal Holds the event loop open (true) or not. */
  protected abstract _ref(keepAlive: boolean): void;

  /** @internal Hands an accepted connection on (or disposes of it once closed). */
  protected _deliver(connection: C): void {
    this.#queue.deliver(connection);
  }

  /** @internal An accept error: to a waiting iterator if nobody listens for 'error', else an 'error' event. */
  protected _fail(error: InterprocessError): void {
    this.#queue.fail(error);
  }

  /** @internal Whether a loop waits for the next connection. */
  protected get _iterating(): boolean {
    return this.#queue.waiting;
  }

  /** @internal Counts a refused peer and emits 'refused' (an event nobody listens to is dropped). */
  protected _refuse(refusal: Refusal): void {
    this.#refused++;
    if (refusal.error === undefined) this.emit('refused', refusal.credentials);
    else this.emit('refused', refusal.credentials, refusal.error);
  }
}

/**
 * @internal Closes `listener` when `signal` aborts; if it already has, closes it now and throws
 * ABORT_ERR. Returns the listener: the end of every listen().
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
