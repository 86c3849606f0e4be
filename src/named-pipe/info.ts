/** Who is at each end of a named pipe, as Windows reports it. */
import type { PeerCredentials } from '../credentials.js';
import type { NativePipeInfo } from '../native/addon.js';

/**
 * Process and session ids of both ends of a named-pipe connection (null where Windows does not
 * tell): the Windows-only part of who is connected, beside `peerCredentials()`.
 */
export interface NamedPipeEnds {
  /** The client's process id. */
  readonly clientProcessId: number | null;
  /** The server's process id. */
  readonly serverProcessId: number | null;
  /** The client's Terminal Services session id. */
  readonly clientSessionId: number | null;
  /** The server's Terminal Services session id. */
  readonly serverSessionId: number | null;
}

/** @internal Which end is the other one: a server's peer is its client, a client's peer its server. */
export type PipePeer = 'client' | 'server';

/** @internal Who is at both ends, and who the peer is: read once the pipe is connected, then kept. */
export interface PipeIdentity {
  readonly ends: NamedPipeEnds;
  readonly credentials: PeerCredentials;
  /** This end is the server's (its peer is the client). */
  readonly isServer: boolean;
}

/** @internal Read once the pipe is connected (before, Windows may report garbage), then kept. */
export function identityOf(info: NativePipeInfo, peer: PipePeer): PipeIdentity {
  const id = (value: number) => (value >= 0 ? value : null);
  const ends: NamedPipeEnds = Object.freeze({
    clientProcessId: id(info.clientProcessId),
    serverProcessId: id(info.serverProcessId),
    clientSessionId: id(info.clientSessionId),
    serverSessionId: id(info.serverSessionId),
  });
  // Process id 0 is the System Idle Process: never a peer, so "not told".
  const pid = peer === 'client' ? ends.clientProcessId : ends.serverProcessId;
  return { ends, credentials: Object.freeze({ pid: pid === 0 ? null : pid, uid: null, gid: null }), isServer: peer === 'client' };
}
