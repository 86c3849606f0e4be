/**
 * Peer credentials: who is on the other end of a connection. One shape for every primitive
 * (local sockets, Unix sockets, named pipes), and the one place the kernel's raw answer becomes it.
 */

/** Who is on the other end of a connection, as the kernel saw it when the connection was made. */
export interface PeerCredentials {
  /** Process id, or null where the OS does not tell it (older BSDs). */
  readonly pid: number | null;
  /** Effective user id (Unix); null on Windows. */
  readonly uid: number | null;
  /** Effective group id (Unix); null on Windows. */
  readonly gid: number | null;
}

/** @internal The addon's answer (pid 0 or less: unknown) as frozen credentials. */
export function unixCredentials(raw: { pid: number; uid: number; gid: number }): PeerCredentials {
  return Object.freeze({ pid: raw.pid > 0 ? raw.pid : null, uid: raw.uid, gid: raw.gid });
}

/** @internal A named-pipe peer's credentials: Windows tells its process id, and no uid or gid. */
export function pipeCredentials(pid: number): PeerCredentials {
  return Object.freeze({ pid: pid > 0 ? pid : null, uid: null, gid: null });
}
