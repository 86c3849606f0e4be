export { connectNamedPipe } from './connect.js';
export type { NamedPipeConnectOptions } from './connect.js';
export type { NamedPipeEnds } from './info.js';
export { NamedPipeListener, defaultSecurityDescriptor, listenNamedPipe } from './listener.js';
export type { NamedPipeConnection, NamedPipeListenOptions, NamedPipeMode } from './listener.js';
export { DEFAULT_MAX_MESSAGE_SIZE, MessagePipe } from './message.js';
export type { NamedPipeDirection } from './message.js';
export { NamedPipeStream } from './stream.js';
