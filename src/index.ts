/**
 * interprocess: interprocess communication for Node.js.
 * @packageDocumentation
 */
export * from './local-socket/index.js';
export * from './unix-socket/index.js';
export type { AccessRule, AllowList } from './access.js';
export type { PeerCredentials, PeerCredentialsOptions, PeerCredentialsWithGroups } from './credentials.js';
export type { BindOptions } from './options.js';
export type { Listener, ListenerEvents, ListenerIteratorOptions } from './listener.js';
export { InterprocessError } from './errors.js';
export type { ErrorDetails, MessageErrorDetails } from './errors.js';
export { nativeStatus } from './native/addon.js';
export type { NativeStatus } from './native/addon.js';
export * from './pipe/index.js';
export * from './fifo/index.js';
export * from './signal/index.js';
export * from './channel/index.js';
export * from './named-pipe/index.js';
export * from './single-instance/index.js';
export * from './sync/index.js';
export * from './service/index.js';
