/** Local sockets: Unix domain sockets on Unix, named pipes on Windows, one API. */
export { fsName, nsName, namespaceDirectory, supportedNameKinds, toName } from './name.js';
export type { LocalSocketName, NameKind, NameSupport, NamespaceStyle } from './name.js';
export { LocalSocketListener, listen } from './listener.js';
export type { ListenOptions } from './listener.js';
export { connect } from './connect.js';
export type { ConnectOptions } from './connect.js';
export { LocalSocket } from './stream.js';
export type { PeerCredentials } from './stream.js';
