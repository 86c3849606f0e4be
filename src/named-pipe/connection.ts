/**
 * A connected pipe handle (ours: made by a listener or by connect) as the object its type makes:
 * a NamedPipeStream (byte type) or a MessagePipe (message type), knowing its name and its peer.
 */
import type { LocalSocketName } from '../local-socket/name.js';
import type { NativeNamedPipe } from '../native/addon.js';
import { type PipePeer, identityOf } from './info.js';
import { MessagePipe, type NamedPipeDirection } from './message.js';
import { NamedPipeStream } from './stream.js';

/** @internal What a connection of a listener or of connectNamedPipe() is made with. */
export interface PipeConnectionOptions {
  /** Message type (a MessagePipe) or byte type (a NamedPipeStream). */
  message: boolean;
  /** The pipe's direction, as the server made it. */
  direction: NamedPipeDirection;
  /** Message type: the largest message received. */
  maxMessageSize: number;
  /** Byte type: keep the writable side open after the peer's end (net's `allowHalfOpen`). */
  allowHalfOpen: boolean;
}

/**
 * @internal The connection over `pipe`, which it then owns; `peer` is the other end ('client' on
 * a server); `name` is null for an adopted handle. The peer's process id is read now, while Windows can tell it.
 */
export function pipeConnection(pipe: NativeNamedPipe, name: LocalSocketName | null, peer: PipePeer, options: PipeConnectionOptions): NamedPipeStream | MessagePipe {
  const identity = identityOf(pipe.info(), peer);
  const { direction } = options;
  // The server sends unless the pipe is 'clientToServer', the client unless 'serverToClient'.
  const canSend = direction !== (peer === 'client' ? 'clientToServer' : 'serverToClient');
  const canReceive = direction !== (peer === 'client' ? 'serverToClient' : 'clientToServer');
  if (options.message) return new MessagePipe(pipe, name, identity, options.maxMessageSize, canSend, canReceive);
  return new NamedPipeStream(pipe.toFd(), name, identity, { readable: canReceive, writable: canSend, allowHalfOpen: options.allowHalfOpen });
}
