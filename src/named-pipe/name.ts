/**
 * Named-pipe names, the names of local sockets on Windows: `NAME` (or `@NAME`, as everywhere a
 * name is taken, or `nsName('NAME')`) is `\\.\pipe\NAME` on this machine; a full `\\.\pipe\NAME`
 * (or `\\HOST\pipe\NAME` for connecting to another machine, or `fsName()` of one) is taken as it is.
 */
import { invalidArgument, invalidType } from '../errors.js';
import { type LocalSocketName, fsName, nsName } from '../local-socket/name.js';

const PIPE_PATH = /^[\\/]{2}[^\\/]+[\\/]pipe[\\/][^\\/]/i;
/** The longest pipe path Windows accepts, in UTF-16 units. */
const MAX_PIPE_PATH = 256;

function isName(value: unknown): value is LocalSocketName {
  if (value === null || typeof value !== 'object') return false;
  const { kind, name, address } = value as Partial<LocalSocketName>;
  return (kind === 'filesystem' || kind === 'namespaced') && typeof name === 'string' && typeof address === 'string';
}

/**
 * The name of a named pipe as a {@link LocalSocketName} of Windows (its `address` the
 * full pipe path): a namespaced name for `NAME`, `@NAME` and `nsName('NAME')` (made on any OS), a
 * filesystem name for a pipe path. Throws ERR_INVALID_ARG_VALUE for names Windows would refuse.
 */
export function toPipeName(name: string | LocalSocketName, argument = 'name'): LocalSocketName {
  let given: string;
  if (typeof name === 'string') given = name.startsWith('@') ? name.slice(1) : name;
  else if (isName(name)) {
    // A name made for another OS (nsName on Linux: an abstract address) means the same pipe.
    const path = [name.address, name.name].find((text) => PIPE_PATH.test(text));
    given = name.kind === 'namespaced' ? name.name : path ?? '';
    if (name.kind === 'filesystem' && path === undefined) throw invalidArgument(argument, `must be a pipe path (\\\\.\\pipe\\NAME) when it is a filesystem name; got ${JSON.stringify(String(name))}`);
  } else throw invalidType(argument, 'a string or a name made by nsName() or fsName()', name);
  if (given.length === 0) throw invalidArgument(argument, 'must not be empty');
  if (given.includes('\0')) throw invalidArgument(argument, `must not contain a NUL character; got ${JSON.stringify(given)}`);
  let full: string;
  if (PIPE_PATH.test(given)) {
    full = given.replace(/\//g, '\\');
  } else if (/[\\/]/.test(given)) {
    throw invalidArgument(argument, `must be a plain name (NAME) or a pipe path (\\\\.\\pipe\\NAME); got ${JSON.stringify(given)}`);
  } else {
    full = `\\\\.\\pipe\\${given}`;
  }
  if (full.length > MAX_PIPE_PATH) throw invalidArgument(argument, `is too long: the pipe path has ${full.length} characters and Windows allows ${MAX_PIPE_PATH}`);
  return PIPE_PATH.test(given) ? fsName(full, 'win32') : nsName(given, 'win32');
}

/** The full pipe path for `name`; throws ERR_INVALID_ARG_VALUE for names Windows would refuse. */
export function pipePath(name: string | LocalSocketName, argument = 'name'): string {
  return toPipeName(name, argument).address;
}
