/** Synchronous calls: the blocking local-socket client and the blocking RPC call. */
export { connectSync, SyncLocalSocket } from './socket.js';
export type { ConnectSyncOptions, ReadUntilOptions, SyncCallOptions } from './socket.js';
export { requestRpcSync } from './rpc.js';
export type { RequestRpcSyncOptions } from './rpc.js';
