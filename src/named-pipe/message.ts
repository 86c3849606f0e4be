/**
 * A message-mode named-pipe connection: each send() is one message, each receive() one whole
 * message, whatever its size up to `maxMessageSize`. Windows keeps the boundaries; we add nothing
 * to the bytes.
 */
import { EventEmitter } from 'node:events';
import { InterprocessError, abortError, fromSystemError, invalidType } from '../errors.js';
import type { LocalSocketName } from '../local-socket/name.js';
import type { PeerCredentials } from '../credentials.js';
import { type NativeNamedPipe, requireNative } from '../native/addon.js';
import { impersonateClient, shareHandle } from './handle.js';
import type { NamedPipeEnds, PipeIdentity } from './info.js';

/** Default largest message a receiver accepts: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/** Which ends may send: both, only the client, or only the server. */
export type NamedPipeDirection = 'duplex' | 'clientToServer' | 'serverToClient';

/** The events of a {@link MessagePipe}, with their listeners' arguments. */
export interface MessagePipeEvents {
  /**
   * A whole message. While the pipe has 'message' listeners it reads on its own and gives every
   * message to them (receive() then refuses); removed, reading stops and the rest waits for receive().
   */
  message: [message: Buffer];
  /** The other end closed: receive() gives null from now on (emitted once, when that is read). */
  end: [];
  /**
   * The error `destroy(error)` was given; while reading for 'message' listeners, also what a
   * receive() would have rejected with (a message over maxMessageSize: the pipe goes on).
   */
  error: [error: Error];
  /** This end is closed (close() finished, or destroy()). */
  close: [];
}

/** Options of {@link MessagePipe.send} and {@link MessagePipe.receive}. */
export interface MessagePipeCallOptions {
  /** Stops waiting with ABORT_ERR; see send() and receive() for what happens to the message. */
  signal?: AbortSignal;
}

/** Options of {@link MessagePipe.iterator}. */
export interface MessagePipeIteratorOptions {
  /**
   * Whether leaving the loop early (break, return, throw) closes the pipe, gracefully; default
   * true, as leaving a loop over a Node stream destroys it. With false the pipe stays open, and the
   * messages not yet read wait for the next loop or receive().
   */
  closeOnReturn?: boolean;
}

/** What one native read gave. */
type Outcome = { message: Buffer | null } | { error: InterprocessError };

function closedError(): InterprocessError {
  return new InterprocessError('ERR_INTERPROCESS_CLOSED', 'This named pipe is closed');
}

/** A failed send, with how many of its bytes Windows took (`bytesWritten`). */
function sendError(error: Error & { code?: string; bytesWritten?: number }, name: LocalSocketName | null): InterprocessError {
  return fromSystemError(error, `Cannot send on ${name ?? 'an adopted pipe'}`, error.code === 'EPIPE' ? 'The other end has closed the pipe.' : undefined, { bytesWritten: error.bytesWritten });
}

function checkSignal(options: MessagePipeCallOptions | undefined): AbortSignal | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
  return signal;
}

/** `promise`, or ABORT_ERR as soon as `signal` aborts (what `promise` does then is the caller's). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * A connected message-mode named pipe. `send()` writes one whole message (never split: a short
 * write is an error); `receive()` and async iteration give whole messages. A message over
 * `maxMessageSize` is drained and reported as ERR_INTERPROCESS_MESSAGE_TOO_LARGE (with its
 * `size`); the next message still arrives. Messages are read with receive(), async iteration or
 * 'message' listeners. Events: see {@link MessagePipeEvents}.
 */
export class MessagePipe extends EventEmitter<MessagePipeEvents> implements AsyncIterable<Buffer>, AsyncDisposable {
  /**
   * The pipe's name: for a client the name it connected to, for an accepted connection its
   * listener's; null for an adopted handle ({@link namedPipeFromHandle}).
   */
  readonly name: LocalSocketName | null;
  /** The largest message receive() accepts. */
  readonly maxMessageSize: number;
  readonly #native: NativeNamedPipe;
  readonly #identity: PipeIdentity;
  readonly #canSend: boolean;
  readonly #canReceive: boolean;
  readonly #writes = new Set<Promise<void>>();
  #reading: Promise<Outcome> | null = null; // the native read in flight, or its outcome not yet taken
  #receiving = false;
  #flowing = false; // reading for 'message' listeners
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #closing: Promise<void> | null = null;

  /** @internal Made by {@link listenNamedPipe} and {@link connectNamedPipe}. */
  constructor(native: NativeNamedPipe, name: LocalSocketName | null, identity: PipeIdentity, maxMessageSize: number, canSend: boolean, canReceive: boolean) {
    super();
    this.#native = native;
    this.name = name;
    this.#identity = identity;
    this.maxMessageSize = maxMessageSize;
    this.#canSend = canSend;
    this.#canReceive = canReceive;
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message') queueMicrotask(() => this.#startFlowing());
    });
  }

  /** True once this end is closed: close() has finished, or destroy() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The process at the other end: its `pid` (the client's on an accepted connection, the
   * server's on a client), with `uid` and `gid` null (Windows has none). Read when the pipe
   * connected, so it answers also after close.
   */
  peerCredentials(): PeerCredentials {
    return this.#identity.credentials;
  }

  /** Windows only: the process and session ids of both ends, as Windows reported them at connect. */
  pipeEnds(): NamedPipeEnds {
    return this.#identity.ends;
  }

  /**
   * The pipe's Windows handle (a HANDLE's value: Windows keeps handles within 32 bits, so a number
   * holds it), owned by this object: valid while it is open, closed with it. Throws
   * ERR_INTERPROCESS_CLOSED once closed. This is the Windows handle, not a Unix descriptor (`fd`).
   */
  get handle(): number {
    if (this.#closed || this.#closing) throw this.#error ?? closedError();
    return this.#native.handle();
  }

  /**
   * Runs `fn` synchronously while this thread impersonates the client (ImpersonateNamedPipeClient),
   * and returns what it returns; reverts (RevertToSelf) when `fn` returns or throws. What `fn` does
   * synchronously on this thread is done with the client's identity; anything asynchronous is not
   * (impersonation belongs to the thread): an async `fn` is refused (ERR_INVALID_ARG_TYPE) and a
   * promise returned is ERR_INVALID_RETURN_VALUE. Server end only (ERR_INVALID_STATE on a client
   * end). To act with its rights (not only read who it is), the client must connect with
   * `allowImpersonation: true`.
   */
  impersonate<T>(fn: () => T): T {
    return impersonateClient(requireNative('impersonate()').namedPipe, () => this.handle, this.#identity.isServer, fn);
  }

  /**
   * Shares this pipe with the running process `pid`: duplicates the handle into it and returns
   * the handle's value there, for that process to adopt with
   * `namedPipeFromHandle(value, { type: 'message' })` (send it the number by any means). This end
   * stays open here: close it (destroy()) once the other process has its copy, without reading
   * meanwhile. The Rust crate's ShareHandle.
   */
  shareWith(pid: number): number {
    return shareHandle(requireNative('shareWith()').namedPipe, this.handle, pid);
  }

  /**
   * Sends one message (a string is sent as UTF-8). Resolves when Windows has taken all of it;
   * sends in flight go out in order. An empty message is a message. Rejects with EPIPE once the
   * other end has closed, and with ERR_INTERPROCESS_SHORT_WRITE when only part was sent (a send
   * cancelled by destroy() after the reader took some of it); every such error has `bytesWritten`.
   * Once close() is called, or after destroy(), rejects with ERR_INTERPROCESS_CLOSED.
   *
   * `signal`: aborted before the call, nothing is sent; aborted while Windows still holds the
   * message, the promise rejects with ABORT_ERR at once but the message is never torn: it goes
   * out whole (close() still waits for it).
   */
  send(message: Uint8Array | string, options?: MessagePipeCallOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      signal = checkSignal(options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#closing) return Promise.reject(this.#error ?? closedError());
    if (!this.#canSend) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'This end of the pipe only receives (its direction lets only the other end send)'));
    let data: Buffer;
    if (typeof message === 'string') data = Buffer.from(message, 'utf8');
    else if (message instanceof Uint8Array) data = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    else return Promise.reject(invalidType('message', 'a Buffer, a Uint8Array or a string', message));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    let takenAtOnce = false;
    const written = new Promise<void>((resolve, reject) => {
      takenAtOnce = this.#native.write(data, (error) => (error ? reject(sendError(error, this.name)) : resolve()));
      if (takenAtOnce) resolve(); // no callback comes
    });
    if (takenAtOnce) return written; // nothing in flight for close() to wait for
    const tracked = written.catch(() => undefined);
    this.#writes.add(tracked);
    void tracked.then(() => this.#writes.delete(tracked));
    return abortable(written, signal);
  }

  /**
   * The next whole message, or null once the other end has closed (or this end closes while
   * waiting). Rejects with ERR_INTERPROCESS_MESSAGE_TOO_LARGE (its `size` set) for a message over
   * maxMessageSize; the message after it is received normally. One receive() at a time. On a
   * closed pipe, rejects with ERR_INTERPROCESS_CLOSED.
   *
   * `signal`: aborting rejects with ABORT_ERR; the pipe stays usable and no message is lost: one
   * that arrives for the aborted receive() goes to the next.
   */
  receive(options?: MessagePipeCallOptions): Promise<Buffer | null> {
    let signal: AbortSignal | undefined;
    try {
      signal = checkSignal(options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.reject(this.#error ?? closedError());
    if (!this.#canReceive) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'This end of the pipe only sends (its direction lets only the other end send)'));
    if (this.#ended) return Promise.resolve(null);
    if (this.#flowing) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'This pipe has \'message\' listeners: its messages go to them (remove them to receive())'));
    if (this.#receiving) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'A receive() is already waiting on this pipe: await it before the next'));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    this.#receiving = true;
    const reading = this.#read();
    return abortable(reading, signal).then(
      (outcome) => {
        this.#receiving = false;
        this.#reading = null; // taken
        queueMicrotask(() => this.#startFlowing()); // a 'message' listener added meanwhile
        return this.#take(outcome);
      },
      (error: unknown) => {
        this.#receiving = false; // aborted: the read goes on, its outcome kept for the next receive()
        queueMicrotask(() => this.#startFlowing());
        throw error;
      },
    );
  }

  #startFlowing(): void {
    if (this.#flowing || this.#receiving || !this.#canReceive || this.listenerCount('message') === 0) return;
    this.#flowing = true;
    // A listener that throws throws at the event loop, as with any event.
    this.#flow().catch((error: unknown) => process.nextTick(() => { throw error; }));
  }

  /** Reads for 'message' listeners while there are any; what arrives after the last goes to receive(). */
  async #flow(): Promise<void> {
    try {
      while (this.listenerCount('message') > 0 && !this.#closed && !this.#ended) {
        const outcome = await this.#read();
        if (this.listenerCount('message') === 0) break; // kept for the next receive()
        this.#reading = null;
        let message: Buffer | null;
        try {
          message = this.#take(outcome);
        } catch (error) {
          // What a peer did, never thrown at the event loop: to 'error' listeners, else a warning.
          if (this.listenerCount('error') > 0) this.emit('error', error as InterprocessError);
          else process.emitWarning(error as InterprocessError);
          if ((error as InterprocessError).code !== 'ERR_INTERPROCESS_MESSAGE_TOO_LARGE') this.destroy();
          continue;
        }
        if (message === null) break;
        this.emit('message', message);
      }
    } finally {
      this.#flowing = false;
    }
  }

  /** The native read in flight (or its outcome not yet taken); one is started if none is. */
  #read(): Promise<Outcome> {
    return (this.#reading ??= new Promise<Outcome>((resolve) => {
      const failed = (error: Error & { size?: number }): Outcome => {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ERR_INTERPROCESS_MESSAGE_TOO_LARGE') return { error: new InterprocessError(code, error.message, { size: error.size }) };
        return { error: fromSystemError(error, `Cannot receive on ${this.name ?? 'an adopted pipe'}`) };
      };
      try {
        const waiting = this.#native.read(this.maxMessageSize, (error, message) => resolve(error ? failed(error) : { message }));
        if (waiting !== undefined) resolve({ message: waiting }); // it was there whole: no callback comes
      } catch (error) {
        resolve(failed(error as Error)); // an outcome like any other: taken by this receive(), not kept
      }
    }));
  }

  #take(outcome: Outcome): Buffer | null {
    if (this.#closed) return null;
    if ('error' in outcome) throw outcome.error;
    if (outcome.message === null && !this.#ended) {
      this.#ended = true;
      process.nextTick(() => this.emit('end'));
    }
    return outcome.message;
  }

  /**
   * The size of the next message waiting, in bytes, without taking it; null when none waits
   * (a waiting empty message also reads as null: Windows does not tell it apart).
   */
  peekMessageLength(): number | null {
    if (this.#closed) throw this.#error ?? closedError();
    try {
      const [available, left] = this.#native.peek();
      return available === 0 ? null : left;
    } catch (error) {
      throw fromSystemError(error, `Cannot peek on ${this.name ?? 'an adopted pipe'}`);
    }
  }

  /**
   * Whole messages until the other end closes; an oversize message throws. Leaving the loop early
   * (break, return, throw) closes the pipe, as leaving a loop over a Node stream destroys it;
   * {@link MessagePipe.iterator} with `closeOnReturn: false` leaves it open.
   */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this.iterator();
  }

  /**
   * The messages, as async iteration gives them, with a choice: `closeOnReturn: false` keeps the
   * pipe open when the loop is left early, and the messages not read wait for the next loop or
   * receive() (a loop only ever takes the message it yields).
   */
  async *iterator(options: MessagePipeIteratorOptions = {}): AsyncGenerator<Buffer, void, undefined> {
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
    const closeOnReturn = options.closeOnReturn ?? true;
    let finished = false;
    try {
      for (;;) {
        if (this.#closed) break;
        const message = await this.receive();
        if (message === null) break;
        yield message;
      }
      finished = true;
    } finally {
      if (!finished && closeOnReturn) await this.close();
    }
  }

  /**
   * Closes this end after every message sent so far has been taken by Windows, so the other end
   * receives all of them before its end of stream; sends after this call reject with
   * ERR_INTERPROCESS_CLOSED. A receive() waiting resolves with null. Memoised: every call returns
   * the same promise.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      await Promise.all(this.#writes);
      if (this.#closed) return; // destroyed meanwhile
      this.#closed = true;
      this.#native.close(false);
      this.emit('close');
    })();
    return this.#closing;
  }

  /**
   * Closes at once: sends still in flight are cancelled (they reject, with `bytesWritten`), a
   * receive() waiting resolves with null. With `error`, emits `'error'` with it, then `'close'`;
   * later calls reject with it.
   */
  destroy(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error ?? null;
    this.#native.close(true);
    this.#closing ??= Promise.resolve();
    process.nextTick(() => {
      if (error) this.emit('error', error);
      this.emit('close');
    });
  }

  /** Lets the process exit while this pipe waits for messages. */
  unref(): this {
    this.#native.ref(false);
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.#native.ref(true);
    return this;
  }

  /** `await using pipe = ...` closes it (flushing) at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
