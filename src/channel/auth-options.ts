/**
 * The options of the authkey handshake (auth.ts runs it): the public types, and their checking into
 * AuthSettings, shared by authenticate() and by serveRpc/connectRpc (takeAuth). Kept apart from the
 * handshake so that what a caller may pass, and the errors for it, are in one place.
 */
import { invalidArgument, invalidType } from '../errors.js';
import { WIRE_NAME } from './auth-wire.js';

/**
 * The HMAC digests of the handshake (Python's `_ALLOWED_DIGESTS`, with Node's names). `'md5'` is
 * the legacy form of Python 3.11 and earlier.
 */
export type AuthDigest = 'sha256' | 'sha384' | 'sha3-256' | 'sha3-384' | 'md5';

/** Options of the authkey handshake, shared by {@link authenticate | authenticate}, serveRpc and connectRpc. */
export interface AuthOptions {
  /**
   * The shared secret: bytes, or a string (its UTF-8 bytes; Python's `authkey` is bytes). With it,
   * a connection is authenticated both ways before a message crosses it. It never goes on the
   * wire. Use a long random key (32 bytes from `crypto.randomBytes`), not a password.
   */
  authkey?: string | Uint8Array;
  /**
   * Give up on a handshake after this many milliseconds (default 10000), so that a peer that
   * sends nothing cannot hold a connection. `Infinity` waits as long as it takes.
   */
  authTimeout?: number;
  /**
   * The HMAC our challenge asks for (default `'sha256'`, as Python 3.12 and later). `'md5'` sends
   * the legacy challenge of Python 3.11 and earlier (20 random bytes, no digest name), for peers
   * that know only that form; Python itself, of any version, answers either form.
   */
  authDigest?: AuthDigest;
  /**
   * Whether HMAC-MD5 is accepted (default true, as Python does): answers in the legacy form (what
   * Python 3.11 and earlier send) and legacy challenges. `false` refuses peers that use MD5 either
   * way, and so every Python before 3.12.
   */
  authLegacy?: boolean;
}

/** Options of {@link authenticate | authenticate}. */
export interface AuthenticateOptions extends AuthOptions {
  /** The shared secret (see {@link AuthOptions.authkey}). */
  authkey: string | Uint8Array;
  /**
   * Which half of the handshake is ours: `'server'` challenges first (Python's `Listener`),
   * `'client'` answers first (Python's `Client`). The two ends of a stream must differ.
   */
  role: 'server' | 'client';
  /** Abandons the handshake (ABORT_ERR) and destroys the stream. */
  signal?: AbortSignal;
}

const DEFAULT_AUTH_TIMEOUT = 10_000;

/** @internal Checked handshake options. */
export interface AuthSettings {
  readonly key: Buffer;
  readonly timeout: number;
  readonly digest: AuthDigest;
  readonly legacy: boolean;
}

/**
 * @internal Checks the handshake options: null when there is no authkey (and no other handshake
 * option, which would be a mistake without one).
 */
export function authSettings(options: AuthOptions): AuthSettings | null {
  const { authkey, authTimeout = DEFAULT_AUTH_TIMEOUT, authDigest = 'sha256', authLegacy = true } = options;
  if (authkey === undefined) {
    for (const name of ['authTimeout', 'authDigest', 'authLegacy'] as const) {
      if (options[name] !== undefined) throw invalidArgument(`options.${name}`, 'has no effect without options.authkey; give the shared key too');
    }
    return null;
  }
  let key: Buffer;
  if (typeof authkey === 'string') key = Buffer.from(authkey, 'utf8');
  else if (authkey instanceof Uint8Array) key = Buffer.from(authkey); // a copy: later changes to the caller's bytes do not reach it
  else throw invalidType('options.authkey', 'a string or a Uint8Array (Buffer)', authkey);
  if (key.length === 0) throw invalidArgument('options.authkey', 'is empty; an empty key authenticates anyone. Use a long random key (32 bytes from crypto.randomBytes)');
  if (typeof authTimeout !== 'number' || !(authTimeout > 0)) throw invalidArgument('options.authTimeout', `must be a positive number of milliseconds (or Infinity); got ${String(authTimeout)}`);
  if (typeof authDigest !== 'string' || !Object.hasOwn(WIRE_NAME, authDigest)) {
    throw invalidArgument('options.authDigest', `must be one of ${Object.keys(WIRE_NAME).map((d) => `'${d}'`).join(', ')}; got ${String(authDigest)}`);
  }
  if (typeof authLegacy !== 'boolean') throw invalidType('options.authLegacy', 'a boolean', authLegacy);
  if (authDigest === 'md5' && !authLegacy) throw invalidArgument('options.authDigest', "is 'md5', which authLegacy: false refuses; choose one");
  return { key, timeout: authTimeout, digest: authDigest, legacy: authLegacy };
}

/** @internal Takes the handshake options out of `options`: checked settings (or null), and the rest. */
export function takeAuth<O extends AuthOptions>(options: O): [AuthSettings | null, Omit<O, keyof AuthOptions>] {
  const { authkey, authTimeout, authDigest, authLegacy, ...rest } = options;
  return [authSettings({ authkey, authTimeout, authDigest, authLegacy }), rest];
}
