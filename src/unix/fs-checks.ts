/** Small filesystem checks shared by the socket-file steps: never following a link. */
import fs from 'node:fs';
import { InterprocessError } from '../errors.js';

/** lstat, or null when nothing is there. */
export function lstatOrNull(file: string): fs.Stats | null {
  try {
    return fs.lstatSync(file);
  } catch {
    return null;
  }
}

/** Whether two stats are of the same file (device and inode). */
export function sameFile(a: fs.Stats | null, b: fs.Stats | null): boolean {
  return a !== null && b !== null && a.dev === b.dev && a.ino === b.ino;
}

/** EACCES for a file in our way that we must not use or take over. */
export function unsafeFile(file: string, why: string): InterprocessError {
  return new InterprocessError('EACCES', `Cannot listen: ${file} ${why}, and interprocess never follows a link or takes over a file it did not create there. Remove it (and check who made it), or listen in a directory only you can write.`, { syscall: 'open', path: file });
}
