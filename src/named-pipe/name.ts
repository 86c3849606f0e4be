/**
 * Named-pipe names: `NAME` is `\\.\pipe\NAME` on this machine; a full `\\.\pipe\NAME` (or
 * `\\HOST\pipe\NAME` for connecting to another machine) is taken as it is.
 */
import { invalidArgument, invalidType } from '../errors.js';
import { type LocalSocketName, fsName, nsName } from '../local-socket/name.js';

const PIPE_PATH = /^[\\/]{2}[^\\/]+[\\/]pipe[\\/][^\\/]/i;
/** The longest pipe path Windows accepts, in UTF-16 units. */
const MAX_PIPE_PATH = 256;

/** The full pipe path for `name`; throws ERR_INVALID_ARG_VALUE for names Windows would refuse. */
export function pipePath(name: string, argument = 'name'): string {
  if (typeof name !== 'string') throw invalidType(argument, 'a string', name);
  if (name.length === 0) throw invalidArgument(argument, 'must not be empty');
  if (name.includes('\0')) throw invalidArgument(argument, `must not contain a NUL character; got ${JSON.stringify(name)}`);
  let full: string;
  if (PIPE_PATH.test(name)) {
    full = name.replace(/\//g, '\\');
  } else if (/[\\/]/.test(name)) {
    throw invalidArgument(argument, `must be a plain name (NAME) or a pipe path (\\\\.\\pipe\\NAME); got ${JSON.stringify(name)}`);
  } else {
    full = `\\\\.\\pipe\\${name}`;
  }
  if (full.length > MAX_PIPE_PATH) throw invalidArgument(argument, `is too long: the pipe path has ${full.length} characters and Windows allows ${MAX_PIPE_PATH}`);
  return full;
}

/**
 * A named pipe's name as every listener's name: a string `NAME` (or `@NAME`, as for local
 * sockets) is `\\.\pipe\NAME` in the pipe namespace (nsName('NAME') on Windows), a full pipe
 * path is taken as it is, and a name object must be a pipe's (from nsName() or fsName() on Windows).
 */
export function pipeName(name: string | LocalSocketName, argument = 'name'): LocalSocketName {
  if (typeof name === 'string') {
    const plain = name.startsWith('@') ? name.slice(1) : name;
    const full = pipePath(plain, argument);
    return PIPE_PATH.test(plain) ? fsName(full, 'win32') : nsName(plain, 'win32');
  }
  if (name === null || typeof name !== 'object' || typeof name.address !== 'string') {
    throw invalidType(argument, 'a pipe name string or a name made by nsName() or fsName()', name);
  }
  if (!PIPE_PATH.test(name.address)) {
    throw invalidArgument(argument, `is not a named pipe's name (${String(name)}): use a string, or nsName()/fsName() on Windows`);
  }
  return name;
}
