/**
 * The lock file beside a socket file (`<path>.lock`, flock'd while listening): it tells a live
 * interprocess server at once and keeps two servers starting together from both winning; the
 * kernel drops it when its holder dies. It is never opened through a link, created with O_EXCL,
 * never truncated or chmod'ed, and one that is not a plain file of this user's is refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InterprocessError, fromSystemError } from '../errors.js';
import { optionalNative } from '../native/addon.js';
import { lstatOrNull, sameFile, unsafeFile } from './fs-checks.js';

/**
 * Opens the lock file without following a link: creates it (O_EXCL) or opens the existing one,
 * which must be a plain file of this user's with one name. Never truncates or chmods it.
 */
/** What to do when the socket's directory refused a file: it is missing, or not ours to write. */
function directoryHint(error: unknown, lockPath: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  const directory = path.dirname(lockPath);
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return `The directory ${directory} does not exist: create it first (e.g. fs.mkdirSync(dir, { recursive: true, mode: 0o700 }))`;
  }
  return `The directory of the socket (${directory}) must be writable by this user`;
}

function openLockFile(lockPath: string): number {
  const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  const uid = process.getuid?.();
  for (let attempt = 0; attempt < 10; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(lockPath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      return fd; // ours: made just now
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw fromSystemError(error, `Cannot create the lock file ${lockPath}`, directoryHint(error, lockPath));
      }
    }
    try {
      // O_NONBLOCK: a FIFO planted there must not hang the open.
      fd = fs.openSync(lockPath, O_RDWR | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue; // removed meanwhile: create it
      if (code === 'ELOOP' || code === 'EMLINK') throw unsafeFile(lockPath, 'is a symbolic link');
      throw fromSystemError(error, `Cannot open the lock file ${lockPath}`, directoryHint(error, lockPath));
    }
    const stats = fs.fstatSync(fd);
    const why = !stats.isFile() ? 'is not a regular file'
      : uid !== undefined && stats.uid !== uid ? `belongs to uid ${stats.uid}, not to this process's uid ${uid}`
      : stats.nlink !== 1 ? 'has other names (hard links)'
      : null;
    if (why === null) return fd;
    fs.closeSync(fd);
    throw unsafeFile(lockPath, why);
  }
  throw new InterprocessError('EAGAIN', `Cannot open the lock file ${lockPath}: it kept appearing and vanishing; try again`, { path: lockPath });
}

/** Takes the lock file beside the socket; false if a live holder has it. */
export async function takeLock(socketPath: string): Promise<{ fd: number; lockPath: string } | null> {
  const lockPath = `${socketPath}.lock`;
  const native = optionalNative();
  if (native === null) return { fd: -1, lockPath };
  for (let attempt = 0; attempt < 10; attempt++) {
    const fd = openLockFile(lockPath);
    let locked = false;
    try {
      locked = native.tryLock(fd);
      // The holder may have unlinked the file before we locked it: then our lock guards nothing.
      if (locked && sameFile(fs.fstatSync(fd), lstatOrNull(lockPath))) return { fd, lockPath };
    } catch (error) {
      fs.closeSync(fd);
      throw fromSystemError(error, `Cannot lock ${lockPath}`);
    }
    fs.closeSync(fd);
    if (!locked) return null;
  }
  throw new InterprocessError('EAGAIN', `Cannot lock ${lockPath}: it kept being replaced; try again`);
}

/** Unlinks and releases a lock file we hold. */
export function releaseLock(fd: number, lockPath: string): void {
  // Unlink while still holding the lock; a waiter that opened the old file re-checks its inode.
  try {
    fs.unlinkSync(lockPath);
  } catch {
    /* already gone */
  }
  fs.closeSync(fd);
}
