/**
 * One RPC request from synchronous code: connect to a serveRpc() server, run the authkey handshake
 * if there is a key, send one request frame, read frames until its reply, close. The wire is the
 * channel's own (docs/channel.md): each frame a 4-byte big-endian length and its payload, a request
 * `[1][u32 id][u16 method length][method][body]`, a reply `[2][u32 id][body]`, a failure
 * `[3][u32 id][JSON {code, message}]`; events and plain messages the server sends meanwhile are
 * skipped. The handshake is Python's multiprocessing one, in the client's role (auth.ts has the
 * server's and the async client's), from the same wire helpers (auth-wire.ts).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type AuthOptions, type AuthSettings, takeAuth } from '../channel/auth-options.js';
import { CHALLENGE, FAILURE as AUTH_FAILURE, LEGACY_NONCE_BYTES, MAX_MESSAGE, NONCE_BYTES, WELCOME, WIRE_NAME, authError, digestOf, frame, hmac, show } from '../channel/auth-wire.js';
import { type Codec, type CodecName, decodeSpan, encodeBody, toCodec } from '../channel/codec.js';
import { DEFAULT_MAX_MESSAGE_SIZE, MAX_FRAME_LIMIT, frameTooLarge } from '../channel/frame.js';
import { FAILURE, REPLY, REQUEST, checkName } from '../channel/rpc-types.js';
import { InterprocessError, invalidArgument } from '../errors.js';
import type { LocalSocketName } from '../local-socket/name.js';
import { checkTimeout, deadlineOf, leftOf, optionsOf } from './native.js';
import { type SyncLocalSocket, connectSync } from './socket.js';

/** Options of {@link requestRpcSync}. */
export interface RequestRpcSyncOptions<T = unknown> extends AuthOptions {
  /**
   * Give up with ETIMEDOUT after this many milliseconds, for the whole call: connect, handshake,
   * request and reply (default: no limit).
   */
  timeout?: number;
  /** Wait for the server to appear (within `timeout`) instead of failing with ENOENT or ECONNREFUSED (default false). */
  wait?: boolean;
  /** The server's codec: `'json'` (default), `'raw'`, `'v8'`, or an object with encode and decode. */
  codec?: CodecName | Codec<T>;
  /** The largest reply frame taken, in bytes (default 16 MiB, as channels). */
  maxMessageSize?: number;
}

const REQUEST_ID = 1;

/** The request's bytes: one frame. */
function requestFrame(method: string, body: string | Uint8Array): Buffer {
  const methodLength = Buffer.byteLength(method);
  const bodyLength = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  const payload = 1 + 4 + 2 + methodLength + bodyLength;
  const bytes = Buffer.allocUnsafe(4 + payload);
  bytes.writeUInt32BE(payload, 0);
  bytes[4] = REQUEST;
  bytes.writeUInt32BE(REQUEST_ID, 5);
  bytes.writeUInt16BE(methodLength, 9);
  bytes.write(method, 11, 'utf8');
  if (typeof body === 'string') bytes.write(body, 11 + methodLength, 'utf8');
  else bytes.set(body, 11 + methodLength);
  return bytes;
}

/** A call that blocks: each step gets what is left of the whole call's timeout. */
class Call {
  constructor(
    readonly socket: SyncLocalSocket,
    readonly timeout: number,
    readonly deadline: number,
  ) {}

  get left(): { timeout?: number } {
    return this.timeout < 0 ? {} : { timeout: leftOf(this.deadline, this.timeout) };
  }

  /** The next frame's payload, at most `max` bytes. */
  readFrame(max: number, tooLarge: (length: number) => InterprocessError): Buffer {
    const length = this.socket.readExact(4, this.left).readUInt32BE(0);
    if (length > max) throw tooLarge(length);
    return this.socket.readExact(length, this.left);
  }
}

/** The authkey handshake, client's role: answer the server's challenge, then challenge it. */
function handshake(call: Call, settings: AuthSettings): void {
  const { key, digest, legacy } = settings;
  const tooLarge = (length: number) => authError(`the server sent a handshake message of ${length} bytes; at most ${MAX_MESSAGE} are allowed (is it speaking the handshake at all?)`);
  // Its challenge.
  const challenge = call.readFrame(MAX_MESSAGE, tooLarge);
  if (!challenge.subarray(0, CHALLENGE.length).equals(CHALLENGE)) {
    throw authError(`the server sent no challenge where one was due (${show(challenge)}); does it use an authkey?`);
  }
  const message = challenge.subarray(CHALLENGE.length);
  if (message.length < LEGACY_NONCE_BYTES) throw authError(`the server's challenge is too short (${message.length} random bytes; at least ${LEGACY_NONCE_BYTES} are due)`);
  const parsed = digestOf(message);
  if (parsed === null) throw authError(`the server's challenge names no digest we know (${show(message)})`);
  let answer: Buffer;
  if (parsed.digest === null || parsed.digest === 'md5') {
    if (!legacy) throw authError('the server asks for HMAC-MD5 (Python 3.11 or earlier, or a legacy peer), which authLegacy: false refuses');
    answer = parsed.digest === null ? hmac('md5', key, message) : Buffer.concat([Buffer.from('{md5}', 'latin1'), hmac('md5', key, message)]);
  } else {
    answer = Buffer.concat([Buffer.from(`{${WIRE_NAME[parsed.digest]}}`, 'latin1'), hmac(parsed.digest, key, message)]);
  }
  call.socket.write(frame(answer), call.left);
  const verdict = call.readFrame(MAX_MESSAGE, tooLarge);
  if (verdict.equals(AUTH_FAILURE)) throw authError('the server refused our answer to its challenge: it does not hold the same authkey');
  if (!verdict.equals(WELCOME)) throw authError(`the server's verdict on our answer is neither #WELCOME# nor #FAILURE# (${show(verdict)})`);
  // Our challenge.
  const ours = digest === 'md5' ? randomBytes(LEGACY_NONCE_BYTES) : Buffer.concat([Buffer.from(`{${WIRE_NAME[digest]}}`, 'latin1'), randomBytes(NONCE_BYTES)]);
  call.socket.write(frame(Buffer.concat([CHALLENGE, ours])), call.left);
  const reply = call.readFrame(MAX_MESSAGE, tooLarge);
  const named = digestOf(reply);
  const refuse = (why: string) => {
    call.socket.write(frame(AUTH_FAILURE), call.left);
    return authError(why);
  };
  if (named === null) throw refuse(`the server's answer to our challenge is not one (${reply.length} bytes)`);
  const used = named.digest ?? 'md5';
  if (used === 'md5' && !legacy) throw refuse('the server answered with HMAC-MD5, which authLegacy: false refuses');
  const expected = hmac(used, key, ours);
  if (expected.length !== named.payload.length || !timingSafeEqual(expected, named.payload)) {
    throw refuse("the server's answer to our challenge is wrong: it does not hold the same authkey");
  }
  call.socket.write(frame(WELCOME), call.left);
}

/**
 * Sends one request to the serveRpc() server at `name` and returns its reply, blocking the calling
 * thread (and only it) until the reply comes: for synchronous code (a CLI, a config loader, a
 * require hook). One connection per call, closed before it returns. Fails as request() does: with
 * the server handler's error code (ERR_INTERPROCESS_NO_HANDLER when it has none), ETIMEDOUT after
 * `timeout`, ERR_INTERPROCESS_CLOSED when the server closes the connection before replying, and as
 * connectSync() and the authkey handshake do.
 */
export function requestRpcSync<R = unknown, T = unknown>(name: string | LocalSocketName, method: string, body?: T, options?: RequestRpcSyncOptions<T>): R {
  checkName(method, 'method');
  const opts = optionsOf(options);
  const [auth, rest] = takeAuth(opts);
  const { timeout, wait, codec: codecOption, maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE } = rest;
  const ms = checkTimeout(timeout);
  const codec = toCodec<T>(codecOption, 'json');
  if (!Number.isInteger(maxMessageSize) || maxMessageSize < 0 || maxMessageSize > MAX_FRAME_LIMIT) {
    throw invalidArgument('options.maxMessageSize', `must be an integer from 0 to ${MAX_FRAME_LIMIT}; got ${String(maxMessageSize)}`);
  }
  const encoded = requestFrame(method, body === undefined ? new Uint8Array(0) : encodeBody(codec, body, 'body'));
  if (encoded.length - 4 > maxMessageSize) throw frameTooLarge(encoded.length - 4, maxMessageSize, 'send');
  const deadline = deadlineOf(ms);
  const socket = connectSync(name, { wait, ...(ms < 0 ? {} : { timeout: ms }) });
  const where = `requestRpcSync('${method}') to ${socket.name}`;
  try {
    const call = new Call(socket, ms, deadline);
    if (auth !== null) handshake(call, auth);
    socket.write(encoded, call.left);
    for (;;) {
      const payload = call.readFrame(maxMessageSize, (length) => frameTooLarge(length, maxMessageSize, 'receive'));
      if (auth === null && payload.subarray(0, CHALLENGE.length).equals(CHALLENGE)) {
        throw authError('the server asks for an authkey (a challenge came first): pass the same options.authkey as the server');
      }
      if (payload.length < 5 || (payload[0] !== REPLY && payload[0] !== FAILURE) || payload.readUInt32BE(1) !== REQUEST_ID) continue; // an event or message
      let decoded: unknown;
      try {
        decoded = payload[0] === FAILURE ? JSON.parse(payload.toString('utf8', 5)) : payload.length === 5 ? undefined : decodeSpan(codec, payload, 5, payload.length);
      } catch (error) {
        throw new InterprocessError('ERR_INTERPROCESS_DECODE', `${where}: the reply is malformed: ${(error as Error)?.message}`, { cause: error });
      }
      if (payload[0] === REPLY) return decoded as R;
      const { code, message } = (decoded ?? {}) as { code?: unknown; message?: unknown };
      throw new InterprocessError(typeof code === 'string' ? code : 'ERR_INTERPROCESS_REMOTE', `The peer's handler failed: ${typeof message === 'string' ? message : 'no message'}`);
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ETIMEDOUT') throw new InterprocessError('ETIMEDOUT', `${where} timed out after ${ms} ms (no reply)`, { cause: error });
    if (code === 'ERR_INTERPROCESS_TRUNCATED') {
      throw new InterprocessError('ERR_INTERPROCESS_CLOSED', `${where}: the server closed the connection before the reply came${auth !== null ? ' (or during the authkey handshake: does it use the same key?)' : ''}`, { cause: error });
    }
    if (code === 'ECONNRESET' || code === 'EPIPE') throw new InterprocessError('ERR_INTERPROCESS_CLOSED', `${where}: the server closed the connection before the reply came`, { cause: error });
    throw error;
  } finally {
    socket.close();
  }
}
