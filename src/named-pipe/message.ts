/**
 * A message-mode named-pipe connection: each send() is one message, each receive() one whole
 * message, whatever its size up to `maxMessageSize`. Windows keeps the boundaries; we add nothing
 * to the bytes.
 */
import { EventEmitter } from 'node:events';
import { InterprocessError, fromSystemError, invalidType } from '../errors.js';
import type { NativeNamedPipe } from '../native/addon.js';
import type { NamedPipeEnds } from './info.js';

/** Default largest message a receiver accepts: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/** Which ends may send: both, only the client, or only the server. */
export type NamedPipeDirection = 'duplex' | 'clientToServer' | 'serverToClient';

function closedError(): InterprocessError {
  return new InterprocessError('ERR_INTERPROCESS_CLOSED', 'This named pipe is closed');
}

/** A failed send, with how many of its bytes Windows took (`bytesWritten`). */
function sendError(error: Error & { code?: string; bytesWritten?: number }, pipeName: string): InterprocessError {
  const failure = fromSystemError(error, `Cannot send on ${pipeName}`, error.code === 'EPIPE' ? 'The other end has closed the pipe.' : undefined);
  return error.bytesWritten === undefined ? failure : Object.assign(failure, { bytesWritten: error.bytesWritten });
}

/**
 * A connected message-mode named pipe. `send()` writes one whole message (never split: a short
 * write is an error); `receive()` and async iteration give whole messages. A message over
 * `maxMessageSize` is drained and reported as ERR_INTERPROCESS_MESSAGE_TOO_LARGE (with its
 * `size`); the next message still arrives. Events: `'close'`.
 */
export class MessagePipe extends EventEmitter implements AsyncIterable<Buffer>, AsyncDisposable {
  /** The pipe path this connection belongs to. */
  readonly pipeName: string;
  /** Process and session ids of both ends. */
  readonly ends: NamedPipeEnds;
  /** The largest message receive() accepts. */
  readonly maxMessageSize: number;
  readonly #native: NativeNamedPipe;
  readonly #canSend: boolean;
  readonly #canReceive: boolean;
  readonly #writes = new Set<Promise<void>>();
  #receiving = false;
  #ended = false;
  #closed = false;
  #closing: Promise<void> | null = null;

  /** @internal Made by {@link listenNamedPipe} and {@link connectNamedPipe}. */
  constructor(native: NativeNamedPipe, pipeName: string, ends: NamedPipeEnds, maxMessageSize: number, canSend: boolean, canReceive: boolean) {
    super();
    this.#native = native;
    this.pipeName = pipeName;
    this.ends = ends;
    this.maxMessageSize = maxMessageSize;
    this.#canSend = canSend;
    this.#canReceive = canReceive;
  }

  /** True until close() or destroy(). */
  get open(): boolean {
    return !this.#closed;
  }

  /**
   * Sends one message (a string is sent as UTF-8). Resolves when Windows has taken all of it;
   * sends in flight go out in order. An empty message is a message. Rejects with EPIPE once the
   * other end has closed, and with ERR_INTERPROCESS_SHORT_WRITE when only part was sent (a send
   * cancelled by destroy() after the reader took some of it); every such error has `bytesWritten`.
   */
  send(message: Uint8Array | string): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    if (!this.#canSend) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'This end of the pipe only receives (its direction lets only the other end send)'));
    let data: Buffer;
    if (typeof message === 'string') data = Buffer.from(message, 'utf8');
    else if (message instanceof Uint8Array) data = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    else return Promise.reject(invalidType('message', 'a Buffer, a Uint8Array or a string', message));
    let takenAtOnce = false;
    const written = new Promise<void>((resolve, reject) => {
      takenAtOnce = this.#native.write(data, (error) => (error ? reject(sendError(error, this.pipeName)) : resolve()));
      if (takenAtOnce) resolve(); // no callback comes
    });
    if (takenAtOnce) return written; // nothing in flight for close() to wait for
    const tracked = written.catch(() => undefined);
    this.#writes.add(tracked);
    void tracked.then(() => this.#writes.delete(tracked));
    return written;
  }

  /**
   * The next whole message, or null once the other end has closed (or this end was closed).
   * Rejects with ERR_INTERPROCESS_MESSAGE_TOO_LARGE for a message over maxMessageSize; the
   * message after it is received normally. One receive() at a time.
   */
  receive(): Promise<Buffer | null> {
    if (!this.#canReceive) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'This end of the pipe only sends (its direction lets only the other end send)'));
    if (this.#ended || this.#closed) return Promise.resolve(null);
    if (this.#receiving) return Promise.reject(new InterprocessError('ERR_INVALID_STATE', 'A receive() is already waiting on this pipe: await it before the next'));
    this.#receiving = true;
    return new Promise((resolve, reject) => {
      const waiting = this.#native.read(this.maxMessageSize, (error, message) => {
        this.#receiving = false;
        if (this.#closed) return resolve(null);
        if (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ERR_INTERPROCESS_MESSAGE_TOO_LARGE') return reject(Object.assign(new InterprocessError(code, error.message), { size: error.size }));
          return reject(fromSystemError(error, `Cannot receive on ${this.pipeName}`));
        }
        if (message === null) this.#ended = true;
        resolve(message);
      });
      if (waiting !== undefined) {
        // It was there whole: no callback comes.
        this.#receiving = false;
        resolve(waiting);
      }
    });
  }

  /**
   * The size of the next message waiting, in bytes, without taking it; null when none waits
   * (a waiting empty message also reads as null: Windows does not tell it apart).
   */
  peekMessageLength(): number | null {
    if (this.#closed) throw closedError();
    try {
      const [available, left] = this.#native.peek();
      return available === 0 ? null : left;
    } catch (error) {
      throw fromSystemError(error, `Cannot peek on ${this.pipeName}`);
    }
  }

  /** Whole messages until the other end closes; an oversize message throws (receive() goes on after it). */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const message = await this.receive();
      if (message === null) return;
      yield message;
    }
  }

  /**
   * Closes this end after every message sent so far has been taken by Windows, so the other end
   * receives all of them before its end of stream. A receive() waiting resolves with null.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      await Promise.all(this.#writes);
      this.#closed = true;
      this.#native.close(false);
      this.emit('close');
    })();
    return this.#closing;
  }

  /** Closes at once: sends still in flight are cancelled (they reject). */
  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close(true);
    this.#closing ??= Promise.resolve();
    process.nextTick(() => this.emit('close'));
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
