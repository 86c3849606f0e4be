/**
 * Addresses on the command line:
 *   PATH          a local socket with a filesystem name (on Windows: \\.\pipe\NAME)
 *   @NAME         a local socket with a namespaced name
 *   fifo:PATH     a FIFO file
 */
import { InterprocessError } from '../errors.js';
import { type LocalSocketName, fsName, nsName } from '../local-socket/name.js';

export type Address = { kind: 'local-socket'; name: LocalSocketName } | { kind: 'fifo'; path: string };

export function parseAddress(text: string): Address {
  if (text.startsWith('fifo:')) {
    const path = text.slice('fifo:'.length);
    if (path.length === 0) throw new InterprocessError('ERR_INVALID_ARG_VALUE', 'fifo: needs a path, e.g. fifo:/tmp/app.fifo');
    return { kind: 'fifo', path };
  }
  if (text.startsWith('@')) return { kind: 'local-socket', name: nsName(text.slice(1)) };
  return { kind: 'local-socket', name: fsName(text) };
}

export const ADDRESS_HELP = `Addresses:
  PATH          a local socket with a filesystem name (Windows: \\\\.\\pipe\\NAME)
  @NAME         a local socket with a namespaced name (Linux abstract, Windows pipe, else a
                socket in a private per-user directory)
  fifo:PATH     a FIFO file (listen reads it to stdout, connect writes stdin to it)`;
