/**
 * The addon's socket calls and the buffers every send and receive reuses (one JS thread: no
 * sharing issue), made on first use.
 */
import { type NativeBinding, type NativeUnixSockets, requireNative } from '../native/addon.js';

// Received bytes are copied into a slab that messages view, as Node pools small Buffers: no new
// Buffer per batch. A slab is replaced when nearly full; views keep old ones alive while needed.
const POOL_SIZE = 64 * 1024;
const POOL_ROOM = 2048;

/**
 * @internal Messages up to this size are copied into one Buffer per batch (send's `packed`): the
 * native side then finds them with no N-API call per message, which costs more than such a copy.
 */
export const PACK_MAX = 512;

/** @internal The shared state: the native calls, receive metadata, descriptors, the pool. */
export interface NativeState {
  readonly native: NativeUnixSockets;
  /** The Watcher's event bits (READABLE, WRITABLE, and ERROR: POLLERR, polling stopped). */
  readonly pollEvents: NativeBinding['pollEvents'];
  readonly meta: Int32Array;
  readonly fds: Int32Array;
  readonly progress: Int32Array;
  pool: Buffer;
  poolOffset: number;
  readonly packed: Buffer;
  readonly spans: Int32Array;
}

let shared: NativeState | null = null;

/** @internal The shared state; throws ERR_INTERPROCESS_NATIVE (naming `feature`) without the addon. */
export function sockets(feature: string): NativeState {
  if (shared === null) {
    const addon = requireNative(feature);
    const native = addon.unixSockets;
    shared = {
      native,
      pollEvents: addon.pollEvents,
      meta: new Int32Array(native.META_HEADER + native.RECEIVE_BATCH * native.META_STRIDE),
      fds: new Int32Array(native.RECEIVE_BATCH * native.MAX_FDS),
      progress: new Int32Array(1),
      pool: Buffer.allocUnsafeSlow(POOL_SIZE),
      poolOffset: 0,
      packed: Buffer.allocUnsafeSlow(native.SEND_BATCH * PACK_MAX),
      spans: new Int32Array(native.SEND_BATCH * 2),
    };
  }
  return shared;
}

/** @internal The native socket calls (throws ERR_INTERPROCESS_NATIVE without the addon). */
export function unixNative(feature: string): NativeUnixSockets {
  return sockets(feature).native;
}

/** @internal A batch ended at `offset` of the pool: the next starts aligned, in a new slab when this one is nearly full. */
export function advancePool(state: NativeState, offset: number): void {
  state.poolOffset = (offset + 7) & ~7;
  if (state.poolOffset > POOL_SIZE - POOL_ROOM) {
    state.pool = Buffer.allocUnsafeSlow(POOL_SIZE);
    state.poolOffset = 0;
  }
}
