// The primary's side: the listener that takes other processes' instances (see single-instance.ts).
import { EventEmitter } from 'node:events';
import { AcceptQueue } from '../accept-queue.js';
import type { PeerCredentials } from '../credentials.js';
import { InterprocessError } from '../errors.js';
import type { ListenerIteratorOptions } from '../listener.js';
import type { LocalSocketListener } from '../local-socket/listener.js';
import type { LocalSocket } from '../local-socket/stream.js';
import { Channel } from '../channel/channel.js';
import { type Wire, errorMessage, isWire } from './wire.js';

/** The events of a {@link PrimaryInstance}, with their arguments. */
export interface PrimaryInstanceEvents<D = unknown, R = unknown> {
  /**
   * Another process started: its instance. Answered with `undefined` when the listeners return,
   * unless one of them called `instance.reply()`. With no listener, instances wait for async
   * iteration instead.
   */
  'second-instance': [instance: SecondInstance<D, R>];
  /** A peer the listener refused (another user): its credentials, or null if unreadable. */
  refused: [credentials: PeerCredentials | null, error?: unknown];
  /**
   * Accepting failed: to a loop waiting for the next instance if nobody listens for 'error',
   * else this event (as every listener's: with neither, Node's rule throws it).
   */
  error: [error: InterprocessError];
  /** The primary has closed: no process can hand over to it any more. */
  close: [];
}

/** What a second process handed over: its arguments, working directory, environment and data. */
export class SecondInstance<D = unknown, R = unknown> {
  /** Its arguments (`process.argv.slice(2)` unless it passed `argv`). */
  readonly argv: readonly string[];
  /** Its working directory. */
  readonly cwd: string;
  /** The environment variables it chose to send (its `env` option). */
  readonly env: Readonly<Record<string, string>>;
  /** The data it passed (`undefined` if none). */
  readonly data: D | undefined;
  /** Who it is, from the kernel's peer credentials (on Windows: its process id only). */
  readonly credentials: PeerCredentials | null;
  readonly #answer: (message: unknown) => void;
  #replied = false;

  /** @internal Made by the primary. */
  constructor(message: Wire<D>, credentials: PeerCredentials | null, answer: (message: unknown) => void) {
    this.argv = Object.freeze([...message.argv]);
    this.cwd = message.cwd;
    this.env = Object.freeze({ ...message.env });
    this.data = message.data;
    this.credentials = credentials;
    this.#answer = answer;
  }

  /** Its process id (null where the OS does not say). */
  get pid(): number | null {
    return this.credentials?.pid ?? null;
  }

  /** Whether it has been answered (by reply(), or with `undefined` after the listeners or the loop). */
  get replied(): boolean {
    return this.#replied;
  }

  /**
   * Answers it: the secondary's singleInstance() resolves with `reply` (a JSON value, or a
   * Promise of one, sent when it settles; a rejected one, or a value JSON cannot encode, rejects
   * the secondary's call with that error's code). Call it inside the 'second-instance' listener,
   * or before the loop takes the next instance: otherwise it was answered with `undefined`.
   * Throws ERR_INVALID_STATE when already answered.
   */
  reply(reply?: R | Promise<R>): void {
    if (this.#replied) throw new InterprocessError('ERR_INVALID_STATE', 'This instance has already been answered: reply() once, inside the \'second-instance\' listener or before the loop takes the next instance.');
    this.#replied = true;
    Promise.resolve(reply).then(
      (value) => this.#answer({ reply: value }),
      (error: unknown) => this.#answer({ error: errorMessage(error) }),
    );
  }
}

/** Destroys `channel` with ETIMEDOUT unless it closes within `timeout` (none when Infinity). */
function cutOff(channel: Channel, timeout: number, why: string): NodeJS.Timeout | undefined {
  if (!Number.isFinite(timeout)) return undefined;
  const timer = setTimeout(() => channel.destroy(new InterprocessError('ETIMEDOUT', why)), timeout).unref();
  channel.once('close', () => clearTimeout(timer));
  return timer;
}

/**
 * This process is the primary: other processes started with the same id hand their instances to
 * it. Events (see {@link PrimaryInstanceEvents}): 'second-instance', 'refused', 'error', 'close'.
 * Async-iterable over the instances when nobody listens for 'second-instance'.
 */
export class PrimaryInstance<D = unknown, R = unknown> extends EventEmitter<PrimaryInstanceEvents<D, R>> implements AsyncIterable<SecondInstance<D, R>>, AsyncDisposable {
  /** True: this process is the primary. */
  readonly primary = true as const;
  /** The application id. */
  readonly id: string;
  /** The local socket listener the instances arrive on. */
  readonly listener: LocalSocketListener;
  readonly #queue: AcceptQueue<SecondInstance<D, R>>;
  /** Connections that have not sent their instance yet. */
  readonly #pending = new Set<Channel>();
  readonly #undelivered = new Map<SecondInstance<D, R>, Channel>();
  #closing: Promise<void> | null = null;

  /** @internal Use singleInstance(). */
  constructor(id: string, listener: LocalSocketListener, timeout: number, maxMessageSize: number) {
    super();
    this.id = id;
    this.listener = listener;
    this.#queue = new AcceptQueue<SecondInstance<D, R>>({
      emitConnection: (instance) => {
        if (this.listenerCount('second-instance') === 0) return false;
        this.#undelivered.delete(instance);
        try {
          this.emit('second-instance', instance);
        } finally {
          if (!instance.replied) instance.reply();
        }
        return true;
      },
      hasErrorListeners: () => this.listenerCount('error') > 0,
      emitError: (error) => void this.emit('error', error),
    }, (instance) => {
      // Closed before anyone took it: the secondary sees the connection end and tries again
      // (and becomes the primary if none is left).
      this.#undelivered.get(instance)?.destroy();
      this.#undelivered.delete(instance);
    });
    listener.on('error', (error) => this.#queue.fail(error));
    listener.on('refused', (credentials, ...error) => {
      if (error.length === 0) this.emit('refused', credentials);
      else this.emit('refused', credentials, error[0]);
    });
    listener.on('connection', (socket) => this.#accept(socket, timeout, maxMessageSize));
  }

  #accept(socket: LocalSocket, timeout: number, maxMessageSize: number): void {
    socket.on('error', () => {}); // the channel reports stream errors as its own
    let credentials: PeerCredentials | null = null;
    try {
      credentials = socket.peerCredentials();
    } catch {
      /* not readable here: the listener's rule has already admitted it */
    }
    const channel = new Channel(socket, { maxMessageSize, highWaterMark: 1 });
    channel.on('error', () => {});
    this.#pending.add(channel);
    const timer = cutOff(channel, timeout, `A second instance sent nothing for ${timeout} ms`);
    let got = false;
    channel.once('close', () => this.#pending.delete(channel));
    channel.on('message', (message) => {
      if (got) return channel.destroy(); // one instance per connection
      got = true;
      clearTimeout(timer);
      this.#pending.delete(channel);
      if (!isWire(message)) {
        void channel.send({ error: { code: 'ERR_INTERPROCESS_DECODE', message: 'The primary could not read this instance: it is not { v: 1, argv, cwd, env } (a different version of the package?)' } }).catch(() => {});
        void channel.close().catch(() => {});
        return;
      }
      const instance = new SecondInstance<D, R>(message as Wire<D>, credentials, (answer) => {
        // The answer too has `timeout` to go: a secondary that never reads it is cut off.
        cutOff(channel, timeout, `A second instance did not take its answer within ${timeout} ms`);
        channel.send(answer).then(
          () => void channel.close().catch(() => {}),
          (error: InterprocessError) => {
            // A value JSON cannot encode: say so instead (the channel is still usable).
            if (channel.closed) return;
            void channel.send({ error: errorMessage(error) }).catch(() => {}).finally(() => void channel.close().catch(() => {}));
          },
        );
      });
      this.#undelivered.set(instance, channel);
      channel.once('close', () => this.#undelivered.delete(instance));
      this.#queue.deliver(instance);
    });
  }

  /** True until close() is called. */
  get listening(): boolean {
    return this.#closing === null;
  }

  /**
   * Stops being the primary: the listener closes (the next process to start becomes the primary),
   * connections that have not sent their instance are closed, and instances not yet taken are
   * closed unanswered (their processes try again, and one of them becomes the primary). Instances
   * taken keep their connection until answered. Resolves (and emits 'close') once no one can hand
   * over to this process any more; a second call returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#queue.end();
      for (const channel of this.#pending) channel.destroy();
      this.#pending.clear();
      await this.listener.close();
      this.emit('close');
    })();
    return this.#closing;
  }

  /** Lets the process exit while it is the primary (the listener's unref()). */
  unref(): this {
    this.listener.unref();
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.listener.ref();
    return this;
  }

  /**
   * The instances, as `for await (const instance of primary)` gives them, with options:
   * `{ closeOnReturn: false }` leaves the primary open when the loop is left early. An instance
   * the loop took and did not reply() to is answered with `undefined` when the loop asks for the
   * next one or ends.
   */
  iterator(options: ListenerIteratorOptions = {}): AsyncIterableIterator<SecondInstance<D, R>> {
    const closeOnReturn = options?.closeOnReturn ?? true;
    const inner = this.#queue.iterator(closeOnReturn ? () => this.close() : null);
    let last: SecondInstance<D, R> | undefined;
    const settleLast = () => {
      if (last !== undefined && !last.replied) last.reply();
      last = undefined;
    };
    const iterator: AsyncIterableIterator<SecondInstance<D, R>> = {
      next: async () => {
        settleLast();
        const result = await inner.next();
        if (!result.done) {
          last = result.value;
          this.#undelivered.delete(result.value);
        }
        return result;
      },
      return: async () => {
        settleLast();
        return inner.return!();
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** The instances that arrive. Leaving the loop early closes the primary (see iterator()). */
  [Symbol.asyncIterator](): AsyncIterableIterator<SecondInstance<D, R>> {
    return this.iterator();
  }

  /** `await using app = ...` (when primary) closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
