/**
 * Authenticated channels: the challenge handshake of Python's `multiprocessing.connection`
 * (`authkey`), run on a byte stream before any message crosses it. Each side sends the other a
 * random challenge and checks the HMAC of it keyed by the shared key, so both prove they hold the
 * key without sending it. The frames are the channel's own (a 4-byte big-endian length, then the
 * payload), so Python's `Client(address, authkey=...)` and `Listener(address, authkey=...)` are
 * peers as they are. See docs/channel.md.
 *
 * The handshake reads exactly its own frames from the stream and nothing more: what the peer sends
 * after it stays in the stream, for the Channel made on it afterwards.
 *
 * This file runs the handshake (both roles) and holds authenticate(); its options and their
 * checking are in auth-options.ts, its messages, digests and framing in auth-wire.ts.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Duplex, Readable, Writable } from 'node:stream';
import { InterprocessError, abortError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { UnixSocket } from '../unix-socket/socket.js';
import { type AuthSettings, type AuthenticateOptions, authSettings } from './auth-options.js';
import { CHALLENGE, FAILURE, LEGACY_NONCE_BYTES, MAX_MESSAGE, NONCE_BYTES, Refusal, WELCOME, WIRE_NAME, authError, digestOf, frame, hmac, show } from './auth-wire.js';
import type { StreamPair } from './types.js';

/** Longest wait for our #FAILURE# to be written before the stream is destroyed anyway. */
const FAILURE_WRITE_WAIT = 1000;

/** One handshake on one stream. */
class Handshake {
  readonly #readable: Readable;
  readonly #writable: Writable;
  readonly #settings: AuthSettings;
  readonly #signal: AbortSignal | undefined;
  /** The read waiting for a whole frame. */
  #want: { resolve(frame: Buffer): void; reject(error: unknown): void } | null = null;
  /** The length of the frame being read; -1 while its header is. */
  #length = -1;
  #done = false;
  #timer: NodeJS.Timeout | undefined;
  #resolve: () => void = () => {};
  #reject: (error: unknown) => void = () => {};

  constructor(readable: Readable, writable: Writable, settings: AuthSettings, signal: AbortSignal | undefined) {
    this.#readable = readable;
    this.#writable = writable;
    this.#settings = settings;
    this.#signal = signal;
  }

  run(role: 'server' | 'client'): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      const readable = this.#readable;
      const writable = this.#writable;
      // 'readable' and read(n): the handshake takes exactly its frames, and what follows them
      // stays in the stream (removing this listener later lets 'data' listeners start it again).
      readable.on('readable', this.#onReadable);
      readable.on('end', this.#onEnd);
      readable.on('close', this.#onClose);
      readable.on('error', this.#onError);
      if ((writable as unknown) !== readable) {
        writable.on('error', this.#onError);
        writable.on('close', this.#onClose);
      }
      const { timeout } = this.#settings;
      if (timeout <= 0x7fffffff) {
        this.#timer = setTimeout(() => this.#fail(new Refusal(new InterprocessError('ETIMEDOUT', `The authentication handshake did not finish within ${timeout} ms: the peer sent too little (does it use an authkey? is it on the other side of the handshake: role '${role === 'server' ? 'client' : 'server'}'?). The connection is closed.`), false)), timeout);
      }
      this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
      const steps = role === 'server' ? [this.#challenge, this.#answer] : [this.#answer, this.#challenge];
      (async () => {
        for (const step of steps) await step();
      })().then(
        () => this.#finish(),
        (error) => this.#fail(error instanceof Refusal ? error : new Refusal(fromSystemError(error, 'The authentication handshake failed'), false)),
      );
    });
  }

  /** Our challenge: the peer must answer it with the HMAC of its random bytes under the key. */
  #challenge = async (): Promise<void> => {
    const { key, digest, legacy } = this.#settings;
    const message = digest === 'md5' ? randomBytes(LEGACY_NONCE_BYTES) : Buffer.concat([Buffer.from(`{${WIRE_NAME[digest]}}`, 'latin1'), randomBytes(NONCE_BYTES)]);
    this.#send(Buffer.concat([CHALLENGE, message]));
    const answer = await this.#read();
    const parsed = digestOf(answer);
    if (parsed === null) throw new Refusal(authError(`the peer's answer to our challenge is not one (${answer.length} bytes, neither a {digest}-named HMAC nor a 16-byte HMAC-MD5)`), true);
    const used = parsed.digest ?? 'md5';
    if (used === 'md5' && !legacy) throw new Refusal(authError('the peer answered with HMAC-MD5 (Python 3.11 or earlier, or a legacy peer), which authLegacy: false refuses'), true);
    const expected = hmac(used, key, message);
    // Lengths are no secret; the bytes are compared in constant time.
    if (expected.length !== parsed.payload.length || !timingSafeEqual(expected, parsed.payload)) {
      throw new Refusal(authError("the peer's answer to our challenge is wrong: it does not hold the same authkey"), true);
    }
    this.#send(WELCOME);
  };

  /** The peer's challenge: we answer, and it tells us whether it accepts. */
  #answer = async (): Promise<void> => {
    const { key, legacy } = this.#settings;
    const challenge = await this.#read();
    if (!challenge.subarray(0, CHALLENGE.length).equals(CHALLENGE)) {
      throw new Refusal(authError(`the peer sent no challenge where one was due (${show(challenge)}); does it use an authkey, and is it on the other side of the handshake?`), false);
    }
    const message = challenge.subarray(CHALLENGE.length);
    if (message.length < LEGACY_NONCE_BYTES) throw new Refusal(authError(`the peer's challenge is too short (${message.length} random bytes; at least ${LEGACY_NONCE_BYTES} are due)`), false);
    const parsed = digestOf(message);
    if (parsed === null) throw new Refusal(authError(`the peer's challenge names no digest we know (${show(message)})`), false);
    let answer: Buffer;
    if (parsed.digest === null || parsed.digest === 'md5') {
      if (!legacy) throw new Refusal(authError('the peer asks for HMAC-MD5 (Python 3.11 or earlier, or a legacy peer), which authLegacy: false refuses'), false);
      // The legacy form is the bare HMAC-MD5; '{md5}' named is answered named.
      answer = parsed.digest === null ? hmac('md5', key, message) : Buffer.concat([Buffer.from('{md5}', 'latin1'), hmac('md5', key, message)]);
    } else {
      // The HMAC covers the whole message, digest name included, so it cannot be downgraded.
      answer = Buffer.concat([Buffer.from(`{${WIRE_NAME[parsed.digest]}}`, 'latin1'), hmac(parsed.digest, key, message)]);
    }
    this.#send(answer);
    const verdict = await this.#read();
    if (verdict.equals(WELCOME)) return;
    if (verdict.equals(FAILURE)) throw new Refusal(authError('the peer refused our answer to its challenge: it does not hold the same authkey'), false);
    throw new Refusal(authError(`the peer's verdict on our answer is neither #WELCOME# nor #FAILURE# (${show(verdict)})`), false);
  };

  #send(payload: Buffer): void {
    this.#writable.write(frame(payload));
  }

  /** The next frame's payload, at most MAX_MESSAGE bytes. */
  #read(): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      if (this.#done) return reject(new Refusal(authError('the handshake was stopped'), false));
      this.#want = { resolve, reject };
      this.#onReadable();
    });
  }

  #onReadable = (): void => {
    const readable = this.#readable;
    while (this.#want !== null && !this.#done) {
      if (this.#length < 0) {
        const header = readable.read(4) as Buffer | null;
        if (header === null) return;
        if (header.length < 4) return this.#truncated();
        const length = header.readUInt32BE(0);
        // Checked before a byte of it is read or any room is made for it.
        if (length > MAX_MESSAGE) {
          return this.#fail(new Refusal(authError(`the peer sent a handshake message of ${length === 0xffffffff ? 'over 2 GiB' : `${length} bytes`}; at most ${MAX_MESSAGE} are allowed (is it speaking the handshake at all?)`), false));
        }
        this.#length = length;
      }
      const body = this.#length === 0 ? Buffer.alloc(0) : (readable.read(this.#length) as Buffer | null);
      if (body === null) return;
      if (body.length < this.#length) return this.#truncated();
      this.#length = -1;
      const want = this.#want;
      this.#want = null;
      want.resolve(body);
    }
  };

  #truncated(): void {
    this.#fail(new Refusal(authError('the peer closed the connection in the middle of a handshake message'), false));
  }

  #onEnd = (): void => {
    this.#fail(new Refusal(authError('the peer closed the connection during the handshake (it may have refused us, or not use an authkey)'), false));
  };

  #onClose = (): void => {
    this.#fail(new Refusal(authError('the stream was closed during the handshake'), false));
  };

  #onError = (error: unknown): void => {
    this.#fail(new Refusal(fromSystemError(error, 'The authentication handshake failed', 'The peer may have gone away. The connection is closed.'), false));
  };

  #onAbort = (): void => {
    this.#fail(new Refusal(abortError(this.#signal!), false));
  };

  #stop(): void {
    this.#done = true;
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    const readable = this.#readable;
    const writable = this.#writable;
    readable.off('readable', this.#onReadable);
    readable.off('end', this.#onEnd);
    readable.off('close', this.#onClose);
    readable.off('error', this.#onError);
    if ((writable as unknown) !== readable) {
      writable.off('error', this.#onError);
      writable.off('close', this.#onClose);
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#stop();
    this.#resolve();
  }

  #fail(refusal: Refusal): void {
    if (this.#done) return;
    this.#stop();
    const readable = this.#readable;
    const writable = this.#writable;
    // The stream is ours to end: its late errors (a reset, our #FAILURE# not written) go nowhere.
    const ignore = () => {};
    readable.on('error', ignore);
    if ((writable as unknown) !== readable) writable.on('error', ignore);
    const pending = this.#want;
    this.#want = null;
    pending?.reject(refusal);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(wait);
      readable.destroy();
      if ((writable as unknown) !== readable) writable.destroy();
      this.#reject(refusal.error);
    };
    let wait: NodeJS.Timeout | undefined;
    if (refusal.tellPeer && writable.writable) {
      // Python's listener tells a client it refused; the client then raises AuthenticationError.
      wait = setTimeout(end, FAILURE_WRITE_WAIT);
      writable.write(frame(FAILURE), end);
    } else {
      end();
    }
  }
}

/** The readable and writable sides of what a Channel runs on; a Unix socket of ours is refused. */
function endsOf(stream: Duplex | StreamPair): { readable: Readable; writable: Writable } {
  if (stream instanceof UnixSocket) {
    throw invalidArgument(
      'stream',
      "is a Unix socket of interprocess, which the authkey handshake cannot run on (its reads could not be handed on to the Channel). On one machine the kernel's peerCredentials() say who the peer is; for an authkey, use a local socket (listen/connect), a TCP or TLS socket, or a pipe pair",
    );
  }
  const pair = stream as StreamPair;
  const readable = typeof pair?.readable === 'object' && typeof pair?.writable === 'object' ? pair.readable : (stream as Duplex);
  const writable = readable === stream ? (stream as Duplex) : pair.writable;
  if (typeof readable?.read !== 'function' || typeof readable?.on !== 'function' || typeof writable?.write !== 'function') {
    throw invalidType('stream', 'a Duplex stream or { readable, writable }', stream);
  }
  if (readable.readableObjectMode) throw invalidArgument('stream', 'is in object mode; the handshake and a channel need a byte stream');
  if (readable.listenerCount('data') > 0 || readable.readableFlowing === true) {
    throw invalidArgument('stream', 'is already being read; run the handshake before anything else reads the stream (before making a Channel on it)');
  }
  return { readable, writable };
}

/**
 * Runs the authkey handshake of Python's `multiprocessing.connection` on `stream`, before any
 * message crosses it; make the Channel (or RpcChannel) on the stream once it resolves:
 *
 * ```ts
 * await authenticate(socket, { authkey, role: 'client' });
 * const channel = new Channel(socket);
 * ```
 *
 * Both sides prove they hold `authkey`: the server challenges first, then the client does. The
 * handshake reads only its own frames; what the peer sends after it stays in the stream for the
 * channel. On failure the stream is destroyed (a server first tells the peer `#FAILURE#`, as
 * Python does) and the promise rejects with ERR_INTERPROCESS_AUTH (wrong key, a peer without an
 * authkey or not speaking the handshake, a peer that left), ETIMEDOUT (after `authTimeout`),
 * ABORT_ERR (`signal`), or the stream's own error (ECONNRESET, ...). Call it before anything
 * reads the stream. A Unix socket of interprocess (UnixSocket) is refused: use its
 * peerCredentials() instead.
 */
export function authenticate(stream: Duplex | StreamPair, options: AuthenticateOptions): Promise<void> {
  let ends: { readable: Readable; writable: Writable };
  let settings: AuthSettings | null;
  try {
    if (options === null || typeof options !== 'object') throw invalidType('options', "an object with authkey and role ('server' or 'client')", options);
    if (options.role !== 'server' && options.role !== 'client') throw invalidArgument('options.role', `must be 'server' (challenges first, as Python's Listener) or 'client' (as Python's Client); got ${String(options.role)}`);
    if (options.authkey === undefined) throw invalidType('options.authkey', 'a string or a Uint8Array (Buffer)', undefined);
    settings = authSettings(options);
    ends = endsOf(stream);
    if (options.signal?.aborted) throw abortError(options.signal);
    if (ends.readable.destroyed || ends.writable.destroyed || !ends.writable.writable) throw new InterprocessError('ERR_INTERPROCESS_CLOSED', 'The stream is closed: there is nothing to authenticate');
  } catch (error) {
    return Promise.reject(error);
  }
  return new Handshake(ends.readable, ends.writable, settings!, options.signal).run(options.role);
}

/** @internal authenticate() with checked settings, on a stream that has not been read (serveRpc, connectRpc). */
export function handshake(stream: Duplex, settings: AuthSettings, role: 'server' | 'client', signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Handshake(stream, stream, settings, signal).run(role);
}
