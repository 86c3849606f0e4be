/** The public shapes of Unix sockets: types, messages, options, events. */
import type { LocalSocketName } from '../local-socket/name.js';
import type { PeerCredentials } from '../credentials.js';
import type { ReceivedSocketName } from './address.js';
import type { ReceivedDescriptor, Sendable } from './descriptors.js';

/** The three Unix socket types. */
export type UnixSocketType = 'datagram' | 'seqpacket' | 'stream';

/** @internal The native numbers of the types. */
export const TYPE_NUMBER: Readonly<Record<UnixSocketType, number>> = { datagram: 1, seqpacket: 2, stream: 3 };
/** @internal The types by native number. */
export const TYPE_NAME = ['', 'datagram', 'seqpacket', 'stream'] as const;

/** The sender's process and user, as the kernel saw them when the message was sent (Linux). */
export interface MessageCredentials {
  /** The sending process's id. */
  readonly pid: number;
  /** Its user id. */
  readonly uid: number;
  /** Its group id. */
  readonly gid: number;
}

/** One received message. */
export interface UnixMessage {
  /** The bytes, exactly as sent (datagram, seqpacket); a chunk of the stream (stream). */
  readonly data: Buffer;
  /**
   * The sender's bound name (datagram sockets with bound senders); null otherwise. Sending to it
   * (`{ to: message.from }`) reaches exactly that sender, whatever bytes its name holds.
   */
  readonly from: ReceivedSocketName | null;
  /** Descriptors sent with it, each to be used once (see ReceivedDescriptor). */
  readonly fds: readonly ReceivedDescriptor[];
  /** The sender's credentials, with `passCredentials` (Linux); null otherwise. */
  readonly credentials: MessageCredentials | null;
}

/** Options of a send. */
export interface SendOptions {
  /** Datagram sockets: where to send (otherwise the peer given to connect()). */
  to?: string | LocalSocketName;
  /** Descriptors to send with the message (SCM_RIGHTS), up to 253. They stay open here. */
  fds?: Iterable<Sendable>;
  /**
   * Linux: credentials to send with the message (SCM_CREDENTIALS), for a receiver with
   * `passCredentials`: `true` for this process's pid, effective uid and effective gid, or
   * `{ pid, uid, gid }`, which the kernel checks (only a process with CAP_SYS_ADMIN may name
   * another pid, CAP_SETUID another uid, CAP_SETGID another gid): a refused send rejects with
   * EPERM (ESRCH for a pid no process has), and only that message fails. Without it the kernel
   * attaches the pid, real uid and real gid. Elsewhere ERR_INTERPROCESS_UNSUPPORTED.
   */
  credentials?: boolean | MessageCredentials;
  /**
   * Cancels the send: a message still waiting in the send queue is taken out (not sent) and the
   * send rejects with an AbortError. A stream message the kernel has already taken part of is
   * finished, never torn: then the abort has no effect.
   */
  signal?: AbortSignal;
}

/** Options of receive() and drain(). */
export interface UnixWaitOptions {
  /** Stops waiting: the call rejects with an AbortError, and the socket stays usable. */
  signal?: AbortSignal;
}

/** Options of iterator(). */
export interface UnixSocketIteratorOptions {
  /**
   * Whether leaving the loop early (break, return, throw) closes the socket (default true, as
   * leaving a loop over a Node Readable destroys it). With false the socket stays open and what
   * the loop did not read is kept for the next loop or receive().
   */
  closeOnReturn?: boolean;
}

/** Options every Unix socket takes. */
export interface UnixSocketOptions {
  /** Most descriptors one received message may carry (default 32, at most 253); more is ERR_INTERPROCESS_CTRUNC. */
  maxFds?: number;
  /** Linux: receive each sender's pid, uid and gid with its messages (SO_PASSCRED). */
  passCredentials?: boolean;
  /**
   * Messages waiting in the send queue beyond which drain() (and 'drain') wait (default 4096).
   * send() never rejects for a full queue: its promise settles when the kernel takes the message.
   */
  sendHighWaterMark?: number;
  /** Most messages read ahead for receive() and iteration before reading pauses (default 1024). */
  highWaterMark?: number;
}

/** The events of a UnixSocket, with their arguments. */
export interface UnixSocketEvents {
  /** A message arrived (reading starts when the first 'message' listener is added). */
  message: [message: UnixMessage];
  /**
   * A receive error (a truncated message, cut descriptors, a reset connection) or the error given
   * to destroy(). Without an 'error' listener receive errors go to receive() instead.
   */
  error: [error: Error];
  /** The peer finished sending (stream, seqpacket). */
  end: [];
  /** The send queue went back under half of sendHighWaterMark. */
  drain: [];
  /** The socket is closed and its descriptor released. */
  close: [];
  /**
   * A datagram's sender was refused by the `allow` rule (bindDatagram with passCredentials) and
   * its message dropped: its credentials (null when it sent none), and what the rule threw, if it did.
   */
  refused: [credentials: PeerCredentials | null, error?: unknown];
}
