/**
 * The hooks by which RpcChannel drives the Channel under it: symbol-keyed, so they are
 * not part of Channel's public surface.
 */

/** @internal See Channel[deliver]. */
export const deliver: unique symbol = Symbol('interprocess.deliver');
/** @internal Channel's method for RpcChannel: sends one frame with an envelope before its body. */
export const sendFrame: unique symbol = Symbol('interprocess.sendFrame');
/** @internal The same without a promise (see Channel[queueFrame]). */
export const queueFrame: unique symbol = Symbol('interprocess.queueFrame');
/**
 * @internal Channel's count of received frames still being worked on (RpcChannel: requests whose
 * handler has not settled): `channel[busy](1)` when one starts, `channel[busy](-1)` when it is
 * done. Reading stops while it is at `channel[busyLimit]`, and goes on under half.
 */
export const busy: unique symbol = Symbol('interprocess.busy');
/** @internal Channel's method: resolves once what waits to be written is at most `bytes` (or the channel has ended). */
export const bufferedUnder: unique symbol = Symbol('interprocess.bufferedUnder');
/** @internal See busy. */
export const busyLimit: unique symbol = Symbol('interprocess.busyLimit');
/**
 * @internal A property of a Channel: when set, each received frame goes to this function
 * (payload `buffer[start, end)`, its descriptors) instead of being decoded and delivered
 * (RpcChannel reads its envelope straight from the bytes). Descriptors are closed when it returns
 * unless kept (keepFds).
 */
export const frameHook: unique symbol = Symbol('interprocess.frameHook');
/**
 * @internal A property of a Channel with a frameHook: true when the hook keeps no view of a
 * payload and runs no user code before it has decoded it (RpcChannel with the json codec), so
 * frames joined from several reads may share one scratch buffer (see FrameReader#transient).
 */
export const transientFrames: unique symbol = Symbol('interprocess.transientFrames');
