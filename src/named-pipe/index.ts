export { connectNamedPipe } from './connect.js';
export type { NamedPipeConnectOptions } from './connect.js';
export type { NamedPipeEnds } from './info.js';
export { NamedPipeListener, defaultSecurityDescriptor, listenNamedPipe } from './listener.js';
export type { NamedPipeConnection, NamedPipeListenOptions, NamedPipeMode, NamedPipeType } from './listener.js';
export { DEFAULT_MAX_MESSAGE_SIZE, MessagePipe } from './message.js';
export type { MessagePipeCallOptions, MessagePipeEvents, MessagePipeIteratorOptions, NamedPipeDirection } from './message.js';
export { NamedPipeStream } from './stream.js';
