/**
 * Linux abstract names, the same on the wire on every Node version. libuv before 1.48 (Node 20)
 * pads abstract addresses with NULs to the whole of sun_path, so a Node 20 server named `@app`
 * is unreachable from socat, Python, Rust or C clients of `@app` (and vice versa). There the
 * native addon binds and connects with the exact address and hands the descriptor to Node.
 */
import { fromSystemError } from '../../errors.js';
import { optionalNative } from '../../native/addon.js';
import { closeFd, handToNode, releaseFd } from '../../native/fds.js';
import type { ListenTarget } from '../../unix/listen-on.js';
import type { LocalSocketName } from '../name.js';
import { LocalSocket } from '../stream.js';

function libuvBefore(major: number, minor: number): boolean {
  const [a = 0, b = 0] = (process.versions.uv ?? '0.0').split('.').map(Number);
  return a < major || (a === major && b < minor);
}

const nodePadsAbstractNames = process.platform === 'linux' && libuvBefore(1, 48);
let warned = false;

/** Whether `name` must go through the addon to get its exact address. */
function needsNative(name: LocalSocketName): boolean {
  if (!nodePadsAbstractNames || !name.address.startsWith('\0')) return false;
  if (optionalNative()) return true;
  if (!warned) {
    warned = true;
    process.emitWarning(
      `Without the interprocess native addon, Node ${process.version} (libuv ${process.versions.uv}) pads Linux abstract socket names with NULs, so only other Node <= 20 programs can reach ${name}. Install the addon (see nativeStatus()) or use Node 22 or later.`,
      { code: 'INTERPROCESS_ABSTRACT_PADDED' },
    );
  }
  return false;
}

/** What to pass to net.Server#listen for this name: the address, or a natively bound descriptor. */
export function listenTarget(name: LocalSocketName, backlog: number | undefined): ListenTarget {
  if (!needsNative(name)) return { path: name.address, backlog };
  const fd = optionalNative()!.abstractListen(Buffer.from(name.address), backlog ?? 511);
  // net.Server#listen takes the descriptor at once: out of the addon's registry (native/fds.ts).
  releaseFd(fd);
  return { fd, backlog };
}

/**
 * Connects to an abstract name natively when Node would pad it; returns null when Node's own
 * connect is right. Throws the system error (ECONNREFUSED, EAGAIN, ...) at once.
 */
export function connectAbstract(name: LocalSocketName, allowHalfOpen: boolean): LocalSocket | null {
  if (!needsNative(name)) return null;
  const fd = optionalNative()!.abstractConnect(Buffer.from(name.address));
  try {
    return handToNode(fd, () => new LocalSocket({ fd, readable: true, writable: true, allowHalfOpen }));
  } catch (error) {
    closeFd(fd);
    throw fromSystemError(error, `Cannot use the connection to ${name}`);
  }
}
