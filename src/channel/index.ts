/** Message channels: whole messages over any byte stream, requests and events on top. */
export { authenticate } from './auth.js';
export type { AuthDigest, AuthOptions, AuthenticateOptions } from './auth-options.js';
export { Channel } from './channel.js';
export type { ChannelEvents, ChannelIteratorOptions, ChannelMessage, ChannelOptions, ChannelSendOptions, StreamPair } from './types.js';
export { codecs, jsonCodec, rawCodec, v8Codec } from './codec.js';
export type { Codec, CodecName } from './codec.js';
export { Reservation } from './reservation.js';
export { RpcChannel } from './rpc.js';
export type { RequestHandler, RequestOptions, RpcChannelEvents, RpcOptions } from './rpc-types.js';
export { RpcServer, connectRpc, serveRpc } from './server.js';
export type { RpcServerEvents, RpcServerOptions } from './server.js';
