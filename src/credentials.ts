/**
 * Peer credentials: who is on the other end of a connection. One shape for every primitive
 * (local sockets, Unix sockets, named pipes), and the one place the kernel's raw answer becomes it.
 */
import { InterprocessError, fromSystemError, invalidType } from './errors.js';
import type { NativeBinding } from './native/addon.js';

/** Who is on the other end of a connection, as the kernel saw it when the connection was made. */
export interface PeerCredentials {
  /** Process id, or null where the OS does not tell it (older BSDs). */
  readonly pid: number | null;
  /** Effective user id (Unix); null on Windows. */
  readonly uid: number | null;
  /** Effective group id (Unix); null on Windows. */
  readonly gid: number | null;
  /**
   * The peer's supplementary group ids, as the kernel recorded them when the connection was made:
   * present once asked for with `peerCredentials({ groups: true })` (or read for an
   * `allow: { gids }` rule); null where the OS does not tell them (OpenBSD, NetBSD, Windows).
   * Linux: SO_PEERGROUPS, the `Groups:` of /proc/PID/status, in the kernel's (ascending) order.
   * macOS, FreeBSD: LOCAL_PEERCRED, which keeps at most 15 of them.
   */
  readonly groups?: readonly number[] | null;
}

/** Options of `peerCredentials()`. */
export interface PeerCredentialsOptions {
  /**
   * Also read the peer's supplementary groups (one more getsockopt on Linux, done only when
   * asked, then kept). Ask while the connection is open: after close they can no longer be read,
   * unless asked for before or read by an `allow: { gids }` rule (ERR_SOCKET_CLOSED on a
   * LocalSocket, ERR_INTERPROCESS_CLOSED on a UnixSocket).
   */
  readonly groups?: boolean;
}

/** Peer credentials with the supplementary groups read (`peerCredentials({ groups: true })`). */
export type PeerCredentialsWithGroups = PeerCredentials & {
  /** The supplementary group ids (see PeerCredentials.groups); null where the OS does not tell them. */
  readonly groups: readonly number[] | null;
};

/** @internal The addon's answer (pid 0 or less: unknown) as frozen credentials. */
export function unixCredentials(raw: { pid: number; uid: number; gid: number }): PeerCredentials {
  return Object.freeze({ pid: raw.pid > 0 ? raw.pid : null, uid: raw.uid, gid: raw.gid });
}

/** @internal A named-pipe peer's credentials: Windows tells its process id, and no uid or gid. */
export function pipeCredentials(pid: number): PeerCredentials {
  return Object.freeze({ pid: pid > 0 ? pid : null, uid: null, gid: null });
}

/**
 * @internal Whether peerCredentials(`options`) must read the groups (`options` checked): they are
 * asked for, and `known` (the credentials kept so far, if any) does not hold them yet (read, or
 * known to be unknowable).
 */
export function groupsToRead(options: PeerCredentialsOptions | undefined, known: PeerCredentials | undefined): boolean {
  if (options === undefined) return false;
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  if (options.groups !== undefined && typeof options.groups !== 'boolean') throw invalidType('options.groups', 'a boolean', options.groups);
  return options.groups === true && known?.groups === undefined;
}

/** @internal `credentials` with `groups` added (frozen). */
export function withGroups(credentials: PeerCredentials, groups: readonly number[] | null): PeerCredentialsWithGroups {
  return Object.freeze({ pid: credentials.pid, uid: credentials.uid, gid: credentials.gid, groups });
}

/**
 * @internal The supplementary groups of the peer of the connected socket `fd` (frozen; null where
 * the OS does not tell them), or a typed error: ERR_INTERPROCESS_UNSUPPORTED on a Linux older
 * than 4.13 (no SO_PEERGROUPS).
 */
export function readGroups(native: NativeBinding, fd: number): readonly number[] | null {
  let groups: number[] | null;
  try {
    groups = native.peerGroups(fd);
  } catch (error) {
    const e = fromSystemError(error, "Cannot read the peer's supplementary groups");
    if (e.code === 'ENOPROTOOPT') {
      throw new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', `${e.message} (this kernel has no SO_PEERGROUPS: Linux 4.13 added it). The peer's uid and gid are known: peerCredentials() without groups.`, { cause: error });
    }
    throw e;
  }
  return groups === null ? null : Object.freeze(groups);
}
