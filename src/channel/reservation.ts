/**
 * A message reserved on a Channel and written in place (Channel#reserve): on the shared-memory
 * transport its bytes are the peer's ring itself, so filling them is the only copy; elsewhere a
 * Buffer, sent at commit(). Either way it holds its place in the channel's order.
 */
import { InterprocessError, outOfRange } from '../errors.js';

const EMPTY = new Uint8Array(0);

/** What commit() and cancel() do, given by the channel. */
export interface ReservationOwner {
  commit(data: Uint8Array, length: number): Promise<void> | null;
  cancel(data: Uint8Array): boolean;
}

/**
 * Room for one message, to fill in place and then commit(), or cancel(). Messages sent after it
 * wait until then; what was sent before it has gone. Its payload is the bytes as they are (the
 * raw codec's message; with another codec, what that codec would encode).
 */
export class Reservation {
  readonly #data: Uint8Array;
  readonly #owner: ReservationOwner;
  #ended = false;

  /** @internal Use Channel#reserve(). */
  constructor(data: Uint8Array, owner: ReservationOwner) {
    this.#data = data;
    this.#owner = owner;
  }

  /**
   * The message's bytes, to fill: a view of the peer's ring (shared memory), else a Buffer. Empty
   * once committed or cancelled: on shared memory those bytes are the peer's again (do not keep a
   * reference to them past commit()).
   */
  get data(): Uint8Array {
    return this.#ended ? EMPTY : this.#data;
  }

  /**
   * Sends the first `length` bytes of `data` (default: all) as one message. Resolves when the
   * peer can read it (or the OS has it, on other transports). Throws ERR_INVALID_STATE once
   * committed or cancelled, ERR_OUT_OF_RANGE for a length past `data`; rejects with
   * ERR_INTERPROCESS_CLOSED (or the channel's error) if the channel ended first.
   */
  commit(length: number = this.#data.byteLength): Promise<void> {
    this.#end('commit');
    if (!Number.isInteger(length) || length < 0 || length > this.#data.byteLength) {
      this.#ended = false;
      throw outOfRange('length', `an integer from 0 to ${this.#data.byteLength} (the reserved bytes)`, length);
    }
    const sent = this.#owner.commit(this.#data, length);
    return sent ?? Promise.reject(new InterprocessError('ERR_INTERPROCESS_CLOSED', 'The channel was closed (or destroyed) before the reserved message was committed: nothing of it was sent'));
  }

  /** Sends nothing: the messages after it go on. Throws ERR_INVALID_STATE once committed or cancelled. */
  cancel(): void {
    this.#end('cancel');
    this.#owner.cancel(this.#data);
  }

  /** Whether it was committed or cancelled. */
  get ended(): boolean {
    return this.#ended;
  }

  #end(what: string): void {
    if (this.#ended) throw new InterprocessError('ERR_INVALID_STATE', `Cannot ${what} a reservation already committed or cancelled`);
    this.#ended = true;
  }
}
