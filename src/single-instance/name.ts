/**
 * The local socket name of a single-instance id, scoped to this user:
 * - Linux: the abstract name `interprocess-single-<uid>-<id>`. The abstract namespace is shared
 *   by every user of a network namespace, so the uid keeps users apart; another user can still
 *   bind our name first (squat it), which the secondary detects from the peer's credentials.
 * - macOS, the BSDs: a socket file `single/<id>` in the private per-user namespace directory
 *   (0700, see namespaceDirectory()), which no other user can enter.
 * - Windows: `\\.\pipe\interprocess-single-<user name>-<id>`; the pipe namespace is machine-wide.
 */
import os from 'node:os';
import { invalidArgument, invalidType } from '../errors.js';
import { type LocalSocketName, nsName } from '../local-socket/name.js';
import type { Platform } from '../platform.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Checks an application id: letters, digits, '.', '_' and '-', 1 to 100 characters. */
export function checkId(id: unknown): asserts id is string {
  if (typeof id !== 'string') throw invalidType('id', 'a string', id);
  if (!ID.test(id)) {
    throw invalidArgument('id', `must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. 'com.example.editor'); got ${JSON.stringify(id)}`);
  }
}

/** The name of `id` for the user `uid` (default: this process's). */
export function instanceName(id: string, platform: Platform = process.platform, uid: number | undefined = process.getuid?.()): LocalSocketName {
  checkId(id);
  if (platform === 'win32') {
    // Pipe names may hold any character but '\'; a Windows user name has none.
    return nsName(`interprocess-single-${os.userInfo().username.replace(/\\/g, '_')}-${id}`, platform);
  }
  if (platform === 'linux' || platform === 'android') return nsName(`interprocess-single-${uid ?? 'user'}-${id}`, platform);
  return nsName(`single/${id}`, platform);
}
