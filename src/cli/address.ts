/**
 * Addresses on the command line:
 *   PATH             a local socket with a filesystem name (on Windows: \\.\pipe\NAME)
 *   @NAME            a local socket with a namespaced name
 *   fifo:PATH        a FIFO file
 *   dgram:PATH       a Unix datagram socket (dgram:@NAME: a namespaced name)
 *   seqpacket:PATH   a Unix seqpacket socket (seqpacket:@NAME: a namespaced name)
 *   pipe:NAME        a Windows named pipe, byte mode (msgpipe:NAME: message mode)
 */
import { type LocalSocketName, fsName, nsName } from '../local-socket/name.js';
import { UsageError } from './usage.js';

export type Address =
  | { kind: 'local-socket'; name: LocalSocketName }
  | { kind: 'fifo'; path: string }
  | { kind: 'datagram'; name: LocalSocketName }
  | { kind: 'seqpacket'; name: LocalSocketName }
  | { kind: 'named-pipe'; name: string; message: boolean };

const PREFIXES = { 'dgram:': 'datagram', 'seqpacket:': 'seqpacket' } as const;

const socketName = (text: string) => (text.startsWith('@') ? nsName(text.slice(1)) : fsName(text));

export function parseAddress(text: string): Address {
  if (text.startsWith('fifo:')) {
    const path = text.slice('fifo:'.length);
    if (path.length === 0) throw new UsageError('fifo: needs a path, e.g. fifo:/tmp/app.fifo');
    return { kind: 'fifo', path };
  }
  for (const prefix of ['pipe:', 'msgpipe:']) {
    if (!text.startsWith(prefix)) continue;
    const name = text.slice(prefix.length);
    if (name.length === 0) throw new UsageError(`${prefix} needs a pipe name, e.g. ${prefix}my-app or ${prefix}\\\\.\\pipe\\my-app`);
    return { kind: 'named-pipe', name, message: prefix === 'msgpipe:' };
  }
  for (const [prefix, kind] of Object.entries(PREFIXES)) {
    if (!text.startsWith(prefix)) continue;
    const rest = text.slice(prefix.length);
    if (rest.length === 0 || rest === '@') throw new UsageError(`${prefix} needs a path or @NAME, e.g. ${prefix}/tmp/app.sock or ${prefix}@app`);
    return { kind, name: socketName(rest) };
  }
  // socat habits (tcp:..., unix-connect:...) would otherwise become relative socket file names.
  const unknown = /^([a-z][a-z0-9+-]+):/i.exec(text);
  if (unknown) throw new UsageError(`unknown address type '${unknown[1]}:' (for a socket file named so, write ./${text})`);
  return { kind: 'local-socket', name: socketName(text) };
}

export const ADDRESS_HELP = `Addresses:
  PATH             a local socket with a filesystem name (Windows: \\\\.\\pipe\\NAME); ./@NAME for a
                   file whose name starts with @
  @NAME            a local socket with a namespaced name (Linux abstract, Windows pipe, else a
                   socket in a private per-user directory), as the library reads '@NAME'
  fifo:PATH        a FIFO file (listen reads it to stdout, connect writes stdin to it)
  dgram:PATH       a Unix datagram socket; dgram:@NAME for a namespaced name. listen binds there
                   and prints every datagram received; connect sends stdin as datagrams. Messages
                   meet stdin and stdout as --framing says. Not on Windows.
  seqpacket:PATH   a Unix seqpacket socket; seqpacket:@NAME for a namespaced name. As a local
                   socket, but with messages (see --framing). Not on macOS or Windows.
  pipe:NAME        a Windows named pipe in byte mode (NAME or \\\\.\\pipe\\NAME). Windows only.
  msgpipe:NAME     a Windows named pipe in message mode (see --framing). Windows only.
On Windows, local sockets are named pipes too, and a pipe has no half-close: once stdin ends, the
connection closes after the peer has been quiet for --linger MS (0.5 s).`;
