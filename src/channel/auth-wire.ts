/**
 * The wire side of the authkey handshake (auth.ts runs it): the messages and their sizes as
 * Python's `multiprocessing.connection` has them, their framing, the digest names as they appear
 * on the wire, the HMAC, and the failures a handshake ends with. Kept apart from the handshake's
 * control flow so that the format can be read against Python's in one place.
 */
import { createHmac } from 'node:crypto';
import { InterprocessError } from '../errors.js';
import type { AuthDigest } from './auth-options.js';

/** @internal The challenge prefix: `#CHALLENGE#`, then the challenge. */
export const CHALLENGE = Buffer.from('#CHALLENGE#', 'latin1');
/** @internal The verdict that accepts an answer. */
export const WELCOME = Buffer.from('#WELCOME#', 'latin1');
/** @internal The verdict that refuses an answer. */
export const FAILURE = Buffer.from('#FAILURE#', 'latin1');
/** @internal The largest handshake message either side reads (Python's `recv_bytes(256)`). */
export const MAX_MESSAGE = 256;
/** @internal Random bytes in a challenge: Python 3.12+ send 40 after the digest name; the legacy form 20 and no name. */
export const NONCE_BYTES = 40;
/** @internal Random bytes in a legacy challenge (no digest name). */
export const LEGACY_NONCE_BYTES = 20;
/** A legacy answer is the bare 16-byte HMAC-MD5. */
const MD5_BYTES = 16;
/** The longest digest name on the wire ('sha3_256'). */
const MAX_WIRE_NAME = 8;

/** @internal Node's digest names to Python's, as they appear on the wire in `{name}`. */
export const WIRE_NAME: Readonly<Record<AuthDigest, string>> = { sha256: 'sha256', sha384: 'sha384', 'sha3-256': 'sha3_256', 'sha3-384': 'sha3_384', md5: 'md5' };
const BY_WIRE_NAME = new Map<string, AuthDigest>(Object.entries(WIRE_NAME).map(([node, wire]) => [wire, node as AuthDigest]));

/** @internal A handshake message as a frame: its length (4 bytes, big-endian), then it. */
export function frame(payload: Buffer): Buffer {
  const bytes = Buffer.allocUnsafe(4 + payload.length);
  bytes.writeUInt32BE(payload.length, 0);
  payload.copy(bytes, 4);
  return bytes;
}

/** @internal The HMAC of `message` keyed by `key`. */
export function hmac(digest: AuthDigest, key: Buffer, message: Buffer): Buffer {
  return createHmac(digest, key).update(message).digest();
}

/**
 * @internal How a challenge or an answer names its digest: `{name}` then the payload, or the bare
 * legacy form (16 or 20 bytes: an HMAC-MD5 answer, a legacy challenge). null for anything else.
 */
export function digestOf(message: Buffer): { digest: AuthDigest | null; payload: Buffer } | null {
  if (message.length === LEGACY_NONCE_BYTES || message.length === MD5_BYTES) return { digest: null, payload: message };
  if (message[0] !== 0x7b) return null; // '{'
  const close = message.indexOf(0x7d, 1); // '}'
  if (close < 2 || close > MAX_WIRE_NAME + 1) return null;
  const digest = BY_WIRE_NAME.get(message.toString('latin1', 1, close));
  return digest === undefined ? null : { digest, payload: message.subarray(close + 1) };
}

/** @internal The ERR_INTERPROCESS_AUTH error of a failed handshake. */
export function authError(message: string): InterprocessError {
  return new InterprocessError('ERR_INTERPROCESS_AUTH', `Authentication failed: ${message}. The connection is closed.`);
}

/** @internal A handshake failure, and whether the peer is owed a #FAILURE# first. */
export class Refusal {
  constructor(
    readonly error: InterprocessError,
    readonly tellPeer: boolean,
  ) {}
}

/** @internal A received message as an error message shows it: its length and its first bytes. */
export function show(bytes: Buffer): string {
  const text = JSON.stringify(bytes.toString('latin1', 0, Math.min(bytes.length, 24)));
  return `${bytes.length} bytes: ${text}${bytes.length > 24 ? '...' : ''}`;
}
