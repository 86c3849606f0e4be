/**
 * The private staging directory a listener binds in before its socket is linked into place:
 * made 0700 beside the target, opened without following a link, checked and chmod'ed through its
 * descriptor, and on Linux reached as /proc/self/fd/N (see socket-file.ts).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InterprocessError, fromSystemError } from '../errors.js';
import { sunPathMax } from '../platform.js';
import { lstatOrNull, sameFile, unsafeFile } from './fs-checks.js';

/** A private staging directory: its name in the shared directory, and a descriptor of it. */
export interface Staging {
  /** Its name beside the target (only for removing it: another user could swap that name). */
  readonly name: string;
  readonly fd: number;
  /** How every step reaches it: /proc/self/fd/N on Linux, else its name. */
  readonly via: string;
}

/** Whether /proc/self/fd/N reaches a directory by its descriptor (Linux with /proc mounted). */
function procFdWorks(fd: number, stats: fs.Stats): boolean {
  return process.platform === 'linux' && sameFile(lstatOrNull(`/proc/self/fd/${fd}/.`), stats);
}

/**
 * Makes a private 0700 directory in `dir` for `target`'s socket, opened without following a link,
 * checked and chmod'ed through its descriptor.
 */
export async function makeStagingDirectory(dir: string, target: string): Promise<Staging> {
  // The staged path must fit in sun_path: /proc/self/fd/N/s on Linux; elsewhere the name, made no
  // longer than the target path when the directory leaves less room than 12 characters.
  const room = Math.min(sunPathMax(), Buffer.byteLength(target)) - Buffer.byteLength(dir) - '/./s'.length;
  const length = Math.max(1, Math.min(12, room));
  const uid = process.getuid?.();
  for (;;) {
    const name = path.join(dir, `.${randomBytes(12).toString('base64url').slice(0, length)}`);
    try {
      await fsp.mkdir(name, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw fromSystemError(error, `Cannot listen on a socket in ${dir}`, 'The directory must exist and be writable by this user.', { path: dir });
    }
    let fd: number;
    try {
      fd = fs.openSync(name, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    } catch (error) {
      throw fromSystemError(error, `Cannot open the staging directory ${name}`, 'Another user may have replaced it: listen in a directory only you can write.', { path: name });
    }
    const stats = fs.fstatSync(fd);
    if (!stats.isDirectory() || (uid !== undefined && stats.uid !== uid)) {
      fs.closeSync(fd);
      throw unsafeFile(name, 'was replaced by another user\'s file right after it was made');
    }
    fs.fchmodSync(fd, 0o700); // the umask may have taken bits we need; never by name
    if (procFdWorks(fd, stats)) return { name, fd, via: `/proc/self/fd/${fd}` };
    if (Buffer.byteLength(path.join(name, 's')) > sunPathMax()) {
      removeStaging({ name, fd, via: name });
      throw new InterprocessError('ENAMETOOLONG', `Cannot listen on ${target}: a socket is bound in a private directory beside it first, and here (no /proc/self/fd) its path ${name}/s must fit in sun_path (${sunPathMax()} bytes), so the directory ${dir} may be at most ${sunPathMax() - '/.x/s'.length} bytes. Use a shorter path.`, { path: target });
    }
    return { name, fd, via: name };
  }
}

/** Removes the staging directory: its socket through the descriptor, then the (empty) directory if its name is still it. */
export function removeStaging(staging: Staging): void {
  try {
    fs.unlinkSync(path.join(staging.via, 's'));
  } catch {
    /* moved into place, or never bound */
  }
  try {
    if (sameFile(lstatOrNull(staging.name), fs.fstatSync(staging.fd))) fs.rmdirSync(staging.name);
  } catch {
    /* removed or replaced meanwhile: rmdir never follows a link nor removes a non-empty directory */
  }
  fs.closeSync(staging.fd);
}
