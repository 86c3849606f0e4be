/**
 * Local socket names. A name is resolved once, up front, into the address the OS is given, and
 * every bad name fails here, before any syscall.
 *
 * - Filesystem names: a socket file on Unix (made absolute, so cleanup and takeover never depend
 *   on the working directory), a `\\host\pipe\name` path on Windows.
 * - Namespaced names: the Linux abstract namespace, the Windows pipe namespace (`\\.\pipe\`), and
 *   elsewhere a socket file in a private per-user directory ($XDG_RUNTIME_DIR, else a 0700
 *   directory under the temp dir), which may have subdirectories.
 */
import os from 'node:os';
import path from 'node:path';
import { InterprocessError, invalidArgument, invalidType } from '../errors.js';
import { type Platform, sunPathMax } from '../platform.js';

/** How a name is found: through the filesystem, or in a namespace of its own. */
export type NameKind = 'filesystem' | 'namespaced';

/** Where a namespaced name lives on a platform. */
export type NamespaceStyle = 'abstract' | 'pipe' | 'directory';

/** A resolved local socket name. Create one with {@link fsName} or {@link nsName}. */
export interface LocalSocketName {
  /** How the name is found. */
  readonly kind: NameKind;
  /** The name as given. */
  readonly name: string;
  /**
   * The resolved address handed to the OS: an absolute socket path, `'\0name'` for a Linux
   * abstract name, or `\\.\pipe\name` on Windows.
   */
  readonly address: string;
  /** The socket file on disk, for names that have one (null for abstract names and pipes). */
  readonly path: string | null;
  /** For namespaced names kept in a private directory: that directory (else null). */
  readonly privateDirectory: string | null;
  /** A readable form: the path, `@name` for abstract names, the pipe path on Windows. */
  toString(): string;
}

/** Which kinds of names this platform supports, and where namespaced names live. */
export interface NameSupport {
  /** Whether filesystem names ({@link fsName}) are supported. */
  readonly filesystem: boolean;
  /** Whether namespaced names ({@link nsName}) are supported. */
  readonly namespaced: boolean;
  /** Where namespaced names live: the abstract namespace, the pipe namespace, or a private directory. */
  readonly namespaceStyle: NamespaceStyle;
  /** The longest socket path or abstract name, in bytes (UTF-8); for pipes, in characters. */
  readonly maxLength: number;
}

const WINDOWS_PIPE_MAX = 256;
const WINDOWS_PIPE_PATH = /^[\\/]{2}[^\\/]+[\\/]pipe[\\/][^\\/]/i;

/** Which kinds of local socket names the platform supports. */
export function supportedNameKinds(platform: Platform = process.platform): NameSupport {
  const namespaceStyle = namespaceStyleOf(platform);
  return {
    filesystem: true,
    namespaced: true,
    namespaceStyle,
    maxLength: platform === 'win32' ? WINDOWS_PIPE_MAX : sunPathMax(platform),
  };
}

function namespaceStyleOf(platform: Platform): NamespaceStyle {
  if (platform === 'win32') return 'pipe';
  if (platform === 'linux' || platform === 'android') return 'abstract';
  return 'directory';
}

function checkString(value: unknown, argument: string): asserts value is string {
  if (typeof value !== 'string') throw invalidType(argument, 'a string', value);
  if (value.length === 0) throw invalidArgument(argument, 'must not be empty');
  if (value.includes('\0')) throw invalidArgument(argument, `must not contain a NUL character; got ${JSON.stringify(value)}`);
}

function tooLong(argument: string, what: string, bytes: number, max: number, hint: string) {
  return new InterprocessError('ENAMETOOLONG', `The argument '${argument}' is too long: ${what} is ${bytes} bytes, and this platform allows ${max} (sun_path). ${hint}`);
}

function makeName(kind: NameKind, name: string, address: string, filePath: string | null, privateDirectory: string | null, shown: string): LocalSocketName {
  return Object.freeze({ kind, name, address, path: filePath, privateDirectory, toString: () => shown });
}

/**
 * A filesystem name: a socket file at `socketPath` on Unix (relative paths are resolved against
 * the current directory now), or a pipe path such as `\\.\pipe\my-app` on Windows.
 */
export function fsName(socketPath: string, platform: Platform = process.platform): LocalSocketName {
  checkString(socketPath, 'socketPath');
  if (platform === 'win32') {
    if (!WINDOWS_PIPE_PATH.test(socketPath)) {
      throw invalidArgument('socketPath', `is not a Windows pipe path: expected \\\\.\\pipe\\NAME (or \\\\HOST\\pipe\\NAME); got ${JSON.stringify(socketPath)}. Use nsName('NAME') for a name in the pipe namespace.`);
    }
    if (socketPath.length > WINDOWS_PIPE_MAX) {
      throw tooLong('socketPath', 'the pipe path', socketPath.length, WINDOWS_PIPE_MAX, 'Use a shorter pipe name.');
    }
    return makeName('filesystem', socketPath, socketPath, null, null, socketPath);
  }
  // A Unix name resolved on Windows (an explicit platform) keeps Unix path rules.
  const absolute = (process.platform === 'win32' ? path.posix : path).resolve(socketPath);
  const bytes = Buffer.byteLength(absolute);
  const max = sunPathMax(platform);
  if (bytes > max) {
    throw tooLong('socketPath', `the absolute path ${JSON.stringify(absolute)}`, bytes, max, 'Use a shorter path, e.g. in a shorter directory, or nsName() for a namespaced name.');
  }
  return makeName('filesystem', socketPath, absolute, absolute, null, absolute);
}

/**
 * The private per-user directory for namespaced names on platforms without a socket namespace
 * (macOS, the BSDs): $XDG_RUNTIME_DIR if set, else `interprocess-<uid>` under the temp dir.
 */
export function namespaceDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && path.isAbsolute(runtime)) return path.join(runtime, 'interprocess');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return path.join(os.tmpdir(), `interprocess-${uid}`);
}

/**
 * A namespaced name: an abstract socket on Linux, `\\.\pipe\NAME` on Windows, and elsewhere a
 * socket file in a private per-user directory (see {@link namespaceDirectory}; `/` in the name
 * makes subdirectories there).
 */
export function nsName(name: string, platform: Platform = process.platform): LocalSocketName {
  checkString(name, 'name');
  switch (namespaceStyleOf(platform)) {
    case 'pipe': {
      const address = `\\\\.\\pipe\\${name}`;
      if (address.length > WINDOWS_PIPE_MAX) {
        throw tooLong('name', 'the pipe path', address.length, WINDOWS_PIPE_MAX, 'Use a shorter name.');
      }
      return makeName('namespaced', name, address, null, null, address);
    }
    case 'abstract': {
      const bytes = Buffer.byteLength(name);
      const max = sunPathMax(platform);
      if (bytes > max) throw tooLong('name', 'the abstract name', bytes, max, 'Use a shorter name.');
      return makeName('namespaced', name, `\0${name}`, null, null, `@${name}`);
    }
    case 'directory': {
      const directory = namespaceDirectory();
      const relative = path.normalize(name);
      if (path.isAbsolute(name) || relative === '.' || relative.startsWith('..') || name.endsWith('/')) {
        throw invalidArgument('name', `must be a relative name inside the namespace directory (subdirectories allowed, no '..', no trailing '/'); got ${JSON.stringify(name)}`);
      }
      const socketPath = path.join(directory, relative);
      const bytes = Buffer.byteLength(socketPath);
      const max = sunPathMax(platform);
      if (bytes > max) {
        throw tooLong('name', `its socket path ${JSON.stringify(socketPath)}`, bytes, max, 'Use a shorter name, or set XDG_RUNTIME_DIR to a shorter private directory.');
      }
      return makeName('namespaced', name, socketPath, socketPath, directory, socketPath);
    }
  }
}

/**
 * Accepts a name object as is, and a string as a name: `'@NAME'` is the namespaced name
 * `nsName('NAME')` (as `String(nsName('NAME'))` and the CLI write it), any other string a
 * filesystem name (write `'./@NAME'` for a file whose name starts with `@`).
 */
export function toName(name: string | LocalSocketName): LocalSocketName {
  if (typeof name === 'string') return name.startsWith('@') ? nsName(name.slice(1)) : fsName(name);
  if (name === null || typeof name !== 'object' || typeof name.address !== 'string' || (name.kind !== 'filesystem' && name.kind !== 'namespaced')) {
    throw invalidType('name', 'a path string or a name made by fsName() or nsName()', name);
  }
  return name;
}
