/** Unix domain sockets of every type, with descriptor passing and credentials. */
export { UnixSocket } from './socket.js';
export type { MessageCredentials, SendOptions, UnixMessage, UnixSocketEvents, UnixSocketIteratorOptions, UnixSocketOptions, UnixSocketType, UnixWaitOptions } from './types.js';
export type { UnixDuplexOptions } from './duplex.js';
export { UnixListener, listenUnix } from './listener.js';
export type { ListenUnixOptions, UnixListenerEvents, UnixListenerFromFdOptions, UnixListenerType } from './listener.js';
export { bindDatagram, connectUnix, unixSocketFromFd, unixSocketPair } from './open.js';
export type { ConnectUnixOptions, DatagramOptions, UnixSocketPairOptions } from './open.js';
export type { ReceivedSocketName } from './address.js';
export { ReceivedDescriptor } from './descriptors.js';
export type { DescriptorKind, HasDescriptor, Sendable } from './descriptors.js';
