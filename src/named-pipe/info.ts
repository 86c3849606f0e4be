/** Who is at each end of a named pipe, as Windows reports it. */
import type { NativePipeInfo } from '../native/addon.js';

/** Process and session ids of both ends of a named-pipe connection (null where Windows does not tell). */
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

/** Read once the pipe is connected (before, Windows may report garbage), then kept. */
export function endsOf(info: NativePipeInfo): NamedPipeEnds {
  const id = (value: number) => (value >= 0 ? value : null);
  return Object.freeze({
    clientProcessId: id(info.clientProcessId),
    serverProcessId: id(info.serverProcessId),
    clientSessionId: id(info.clientSessionId),
    serverSessionId: id(info.serverSessionId),
  });
}
