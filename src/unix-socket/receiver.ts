/**
 * The receive side of a Unix socket: reading batches when the socket is readable and someone
 * wants messages (a 'message' listener, a waiting receive(), or read-ahead below `highWaterMark`),
 * and delivering each message or receive error, in order, to listeners or the receive queue.
 */
import type { EventEmitter } from 'node:events';
import { type AccessCheck, decide, reportRefusal } from '../access.js';
import { InterprocessError, abortError, fromSystemError } from '../errors.js';
import { type ReadTarget, readBatch } from './reader.js';
import { ReceiveQueue } from './receive-queue.js';
import type { MessageCredentials, UnixMessage, UnixSocketType } from './types.js';

// Receives per readiness event, at most (see onReadable).
const READ_ROUNDS = 8;
// A batch at least this large means the sender is ahead of us: read again at once.
const BUSY_BATCH = 4;

/** @internal What the receive side needs of its socket. */
export interface ReceiverHost {
  readonly type: UnixSocketType;
  readonly fd: number;
  readonly typeNumber: number;
  readonly maxFds: number;
  readonly highWaterMark: number;
  readonly access: AccessCheck | null;
  /** The socket, which emits 'message', 'error', 'end' and 'refused'. */
  readonly emitter: EventEmitter;
  /** The native receive's mark now (see marks.ts). */
  mark(): number;
  /** Connected sockets have no use for each message's sender address. */
  isConnected(): boolean;
  isDestroyed(): boolean;
  /** What is wanted changed: start or stop polling. */
  updateWatcher(): void;
  /** Nothing queued to send can reach the peer any more. */
  failSends(error: InterprocessError): void;
}

/** @internal See the module comment. */
export class Receiver {
  readonly #host: ReceiverHost;
  readonly #queue = new ReceiveQueue();
  #readAhead = false;
  #eof = false;
  // ECONNRESET read before the end: delivered after the messages still queued before it (see #read).
  #reset: InterprocessError | null = null;
  /** Messages dropped by the `allow` rule. */
  refused = 0;

  readonly #target: ReadTarget;

  constructor(host: ReceiverHost) {
    this.#host = host;
    this.#target = {
      fd: host.fd,
      typeNumber: host.typeNumber,
      maxFds: host.maxFds,
      get mark() {
        return host.mark();
      },
      get connected() {
        return host.isConnected();
      },
      isClosed: host.isDestroyed,
      checksAccess: host.access !== null,
      refuses: (credentials) => this.#refuse(credentials),
      deliver: (item) => this.#deliver(item),
    };
  }

  /** Whether the socket should poll for readability. */
  wantsToRead(): boolean {
    if (this.#host.isDestroyed() || this.#eof) return false;
    if (this.#host.emitter.listenerCount('message') > 0 || this.#queue.waiting > 0) return true;
    return this.#readAhead && this.#queue.length < this.#host.highWaterMark;
  }

  /**
   * The socket is readable. Under load, receive again after delivering: a sender on another CPU
   * has usually refilled the queue while JS ran (Linux keeps only 10 datagrams queued for an
   * unconnected receiver), and a read that finds more saves a trip through the event loop. A
   * small batch means no load (a ping-pong, say): then another read would only find nothing.
   * Bounded, so other work gets its turn.
   */
  onReadable(): void {
    for (let round = 0; round < READ_ROUNDS && this.wantsToRead(); round++) {
      if (this.#read() < BUSY_BATCH) break;
    }
  }

  /** The connection failed for good (`failure` is reported after what was read). */
  fail(failure: InterprocessError): void {
    this.#reset ??= failure;
    this.#onEnd();
  }

  /** Receives one batch and delivers it; returns how many messages (0: none, or the end, or a failure). */
  #read(): number {
    const host = this.#host;
    let batch: { count: number; eof: boolean };
    try {
      batch = readBatch(this.#target);
    } catch (error) {
      const reset = (error as NodeJS.ErrnoException).code === 'ECONNRESET';
      const failure = fromSystemError(error, `Cannot receive on the ${host.type} socket`, reset ? 'The peer closed the connection with data of ours unread; what it sent before is delivered first.' : undefined);
      if (host.type === 'datagram') {
        this.#deliver(failure); // a datagram socket goes on
        return 0;
      }
      if (reset && this.#reset === null) {
        // The peer closed with our data unread. The kernel says so first (seqpacket) or after the
        // bytes (stream), then gives what the peer sent before it, then the end: read those, and
        // report the reset at the end. Nothing queued to send can reach the peer any more.
        this.#reset = failure;
        host.failSends(failure);
        return this.#read();
      }
      this.fail(failure); // the connection is gone
      return 0;
    }
    if (batch.count < 0) return 0;
    if (batch.eof) this.#onEnd();
    else host.updateWatcher();
    return batch.eof || host.isDestroyed() ? 0 : batch.count;
  }

  /** The `allow` rule on one message's credentials (none: refused, as the sender is unknown). */
  #refuse(credentials: MessageCredentials | null): boolean {
    const refusal = decide(this.#host.access!, () => {
      if (credentials === null) throw new InterprocessError('ERR_INTERPROCESS_NO_CREDENTIALS', 'The message came without credentials (passCredentials is off)');
      return credentials;
    });
    if (refusal === null) return false;
    this.refused++;
    reportRefusal(this.#host.emitter, refusal);
    return true;
  }

  #deliver(item: UnixMessage | Error): void {
    const emitter = this.#host.emitter;
    if (item instanceof Error) {
      // Errors come from what a peer did (a reset, a message too large, too many descriptors):
      // never thrown at the event loop. With no 'error' listener and no receive() waiting, a
      // 'message' listener's socket gets a process warning; otherwise receive() gets it in turn.
      if (emitter.listenerCount('error') > 0) emitter.emit('error', item);
      else if (this.#queue.give(item)) return;
      else if (emitter.listenerCount('message') > 0) process.emitWarning(item);
      else this.#queue.push(item);
      return;
    }
    // emit() says whether there was a listener: no second lookup per message.
    if (emitter.emit('message', item)) return;
    if (!this.#queue.give(item)) this.#queue.push(item);
  }

  /** A 'message' listener was added: what receive() read ahead goes to it first, then reading goes on. */
  toListeners(): void {
    const emitter = this.#host.emitter;
    while (emitter.listenerCount('message') > 0 && this.#queue.length > 0) {
      const item = this.#queue.shift();
      if (item instanceof Error) {
        if (emitter.listenerCount('error') > 0) emitter.emit('error', item);
        else process.emitWarning(item);
      } else {
        emitter.emit('message', item);
      }
    }
    this.#host.updateWatcher();
  }

  #onEnd(): void {
    if (this.#host.isDestroyed()) return;
    this.#eof = true;
    if (this.#reset !== null) {
      const reset = this.#reset;
      this.#reset = null;
      this.#deliver(reset);
      if (this.#host.isDestroyed()) return; // by an 'error' listener
    }
    this.#queue.end();
    this.#host.updateWatcher();
    this.#host.emitter.emit('end');
  }

  /** See UnixSocket.receive(). */
  receive(signal: AbortSignal | undefined): Promise<UnixMessage | null> {
    this.#readAhead = true;
    if (this.#queue.length > 0) {
      const item = this.#queue.shift();
      this.#host.updateWatcher();
      return item instanceof Error ? Promise.reject(item) : Promise.resolve(item);
    }
    if (this.#host.isDestroyed() || this.#eof) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const promise = this.#queue.wait(signal);
    this.#host.updateWatcher();
    return promise;
  }

  /** The socket closed: waiting receive() calls get null, what was read ahead is dropped (its descriptors closed). */
  close(): void {
    this.#queue.end();
    this.#queue.clear();
  }
}
