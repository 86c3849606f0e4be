/**
 * The method key by which an object of ours hands out its descriptor to be sent. In a module of
 * its own, with no imports: UnixSocket's class body needs it while socket.ts and descriptors.ts,
 * which import each other, may not have finished loading.
 */
export const descriptorOf: unique symbol = Symbol('interprocess.descriptor');
