/**
 * Socket addresses as the kernel carries them (the bytes of sun_path), to and from the local
 * socket names of the foundation: one name model for every socket type, validated once, by
 * fsName()/nsName() (abstract names with their exact length).
 */
import { type LocalSocketName, fsName, nsName, toName } from '../local-socket/name.js';

const addresses = new WeakMap<LocalSocketName, Buffer>();

/** The sun_path bytes for a name: the absolute path, or NUL and the abstract name. */
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
const recent = new Map<string, LocalSocketName>();
const RECENT_MAX = 256;

/** The name behind a sender's or peer's address; null for an unbound (unnamed) socket. */
export function nameFromAddress(bytes: Buffer): LocalSocketName | null {
  if (bytes.length === 0) return null;
  const key = bytes.toString('latin1');
  let name = recent.get(key);
  if (name === undefined) {
    // The kernel's addresses are valid names: a path fits sun_path, an abstract name too.
    name = bytes[0] === 0 ? nsName(bytes.toString('utf8', 1)) : fsName(bytes.toString('utf8'));
    if (recent.size >= RECENT_MAX) recent.clear();
    recent.set(key, name);
  }
  return name;
}
