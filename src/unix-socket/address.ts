/**
 * Socket addresses as the kernel carries them (the bytes of sun_path), to and from the local
 * socket names of the foundation: one name model for every socket type, validated once, by
 * fsName()/nsName() (abstract names with their exact length).
 *
 * An address read from the kernel (a sender's, a peer's) is whatever some process bound, and it
 * need not be a name fsName()/nsName() would make: an abstract name with NULs or bytes that are
 * not UTF-8 inside, a path of the full 108 bytes with no room for a NUL. So a received name never
 * throws, keeps the exact bytes (`bytes`), and sending to it goes to exactly those bytes.
 */
import { type LocalSocketName, fsName, nsName, toName } from '../local-socket/name.js';

/**
 * A name read from the kernel: a sender's (`message.from`) or a peer's. It is a LocalSocketName
 * (use it as `to`, or to connect), and it keeps the exact address, which a string cannot always
 * spell: an abstract name may hold NULs and bytes that are not UTF-8.
 */
export interface ReceivedSocketName extends LocalSocketName {
  /** The exact sun_path bytes (a copy): a NUL and the abstract name, or the path. */
  readonly bytes: Buffer;
  /**
   * Whether `name` spells the bytes exactly. False for bytes that are not UTF-8 and for NULs
   * inside an abstract name: then `name` shows them as `\xNN` escapes, and only `bytes` (and
   * sending to this name object, which uses them) is exact.
   */
  readonly exact: boolean;
}

const addresses = new WeakMap<LocalSocketName, Buffer>();

/** The sun_path bytes for a name: the absolute path, or NUL and the abstract name (exact for received names). */
export function addressOf(name: LocalSocketName): Buffer {
  let bytes = addresses.get(name);
  if (bytes === undefined) {
    bytes = Buffer.from(name.address);
    addresses.set(name, bytes);
  }
  return bytes;
}

/** A name given as a string or a name object, resolved (a string is a filesystem name). */
export function resolveName(name: string | LocalSocketName): LocalSocketName {
  return toName(name);
}

// Senders repeat: remember the names of recent ones rather than resolve each datagram's again.
const recent = new Map<string, ReceivedSocketName>();
const RECENT_MAX = 256;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The name behind a sender's or peer's address; null for an unbound (unnamed) socket. Never throws. */
export function nameFromAddress(bytes: Uint8Array): ReceivedSocketName | null {
  if (bytes.length === 0) return null;
  const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  let name = recent.get(key);
  if (name === undefined) {
    name = receivedName(Buffer.from(bytes)); // a copy: the caller's buffer is reused
    if (recent.size >= RECENT_MAX) recent.clear();
    recent.set(key, name);
  }
  return name;
}

function decode(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** Printable ASCII as is (but `\`), everything else as \xNN: a readable form of bytes that are not text. */
function escape(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte >= 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  return out;
}

function receivedName(raw: Buffer): ReceivedSocketName {
  const abstract = raw[0] === 0;
  const body = abstract ? raw.subarray(1) : raw;
  let text = decode(body);
  if (text !== null && text.includes('\0')) text = null;
  let base: LocalSocketName | null = null;
  if (text !== null && text.length > 0) {
    try {
      base = abstract ? nsName(text, 'linux') : fsName(text);
    } catch {
      base = null; // valid for the kernel, but not a name fsName()/nsName() make (a 108-byte path)
    }
  }
  const shown = text ?? escape(body);
  const fields = base ?? {
    kind: abstract ? ('namespaced' as const) : ('filesystem' as const),
    name: shown,
    address: abstract ? `\0${shown}` : shown,
    path: abstract ? null : shown,
    privateDirectory: null,
    toString: () => (abstract ? `@${shown}` : shown),
  };
  const name: ReceivedSocketName = Object.freeze({
    kind: fields.kind,
    name: fields.name,
    address: fields.address,
    path: fields.path,
    privateDirectory: fields.privateDirectory,
    toString: fields.toString,
    exact: text !== null,
    get bytes() {
      return Buffer.from(raw);
    },
  });
  addresses.set(name, raw);
  return name;
}
