/** Local sockets: Unix domain sockets on Unix, named pipes on Windows, one API. */
export { fsName, nsName, namespaceDirectory, supportedNameKinds, toName } from './name.js';
export type { LocalSocketName, NameKind, NameSupport, NamespaceStyle } from './name.js';
export { LocalSocketListener, listen } from './listener.js';
export type { ListenFromFdOptions, ListenOptions, LocalSocketListenerEvents } from './listener.js';
export { connect } from './connect.js';
export type { ConnectOptions } from './connect.js';
export { LocalSocket } from './stream.js';
export { createConnection } from './create-connection.js';
export type { CreateConnectionOptions } from './create-connection.js';
export { LocalSocketAgent } from './http.js';
export type { LocalSocketAgentOptions } from './http.js';
