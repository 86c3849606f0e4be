/**
 * Binding a listener to a socket file, safely.
 *
 * 1. A lock file beside the socket (`<path>.lock`, flock'd, held while listening) tells a live
 *    interprocess server at once and keeps two servers starting together from both winning. The
 *    kernel drops the lock when its holder dies, however it dies. The directory may be writable by
 *    others, so the lock file is opened with O_NOFOLLOW (never through a symbolic link), created
 *    with O_EXCL, never truncated or chmod'ed, and one that is not a plain file of this user's
 *    (a link, another user's file, a hard link) is refused (EACCES), never taken over.
 * 2. The listener binds inside a fresh private (0700) staging directory next to the target, gets
 *    its mode there, and only then is linked into place: nobody can connect before the mode holds.
 *    link(2) creates the name only if it is absent, so nothing that appeared meanwhile is clobbered.
 *    The staging directory is opened (O_NOFOLLOW) once made, checked and chmod'ed through that
 *    descriptor; on Linux every later step reaches it as /proc/self/fd/N, never by its name in the
 *    shared directory (which another user could swap for a link), and that short path also means
 *    any socket path up to sun_path's limit can be staged. Elsewhere it is reached by a name no
 *    longer than the final path's when the directory leaves room, and the error says the limit.
 * 3. If the path is taken: a non-socket is never touched (EADDRINUSE); a socket is probed, and
 *    replaced (rename(2), atomic) only if nothing accepts there; a live server keeps its name.
 * 4. On close, and on normal process exit, the file is removed only if it is still ours (same
 *    device and inode), then the lock is released.
 *
 * The socket itself is bound by a {@link SocketFileBinder}: Node's net.Server for local sockets,
 * the native sockets of the unix-socket primitive for datagram and seqpacket sockets. A datagram
 * socket binds in place instead of in a staging directory (step 2), because its bound path is the
 * sender address its peers reply to: there the mode is set on the descriptor before bind (Linux)
 * and a stale file is unlinked, under the lock, just before binding.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { InterprocessError, fromSystemError } from '../errors.js';
import type { BindOptions } from '../options.js';
import { lstatOrNull, sameFile } from './fs-checks.js';
import { listenOn } from './listen-on.js';
import { releaseLock, takeLock } from './lock-file.js';
import { type Staging, makeStagingDirectory, removeStaging } from './staging.js';

/** A socket file this process created and owns. */
export interface SocketFile {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  /** Descriptor of the flock'd lock file, or -1 when the native addon is absent. */
  lockFd: number;
  readonly lockPath: string;
}

/** Whether something is bound at an existing socket file: found by connecting to it. */
export type ProbeResult = 'live' | 'stale' | 'gone';

/** How one kind of socket gets a socket file. */
export interface SocketFileBinder {
  /** Binds the socket (and listens, for a listener) at `socketPath`, applying `mode` as early as the OS allows. */
  bind(socketPath: string, mode: number | undefined): Promise<void> | void;
  /** Undoes bind() when a later step fails. */
  abort(): void;
  /** Connects to the existing socket file with a socket of this kind: is anything bound there? */
  probe(socketPath: string): Promise<ProbeResult>;
  /** Bind at the final path, not in a staging directory (datagram sockets: see the top of this file). */
  inPlace: boolean;
}

const owned = new Set<SocketFile>();
let exitHookInstalled = false;

function addressInUse(socketPath: string, why: string): InterprocessError {
  return new InterprocessError('EADDRINUSE', `Cannot listen on ${socketPath}: ${why}`, { syscall: 'listen', path: socketPath, address: socketPath });
}

/** What an error from connecting to an existing socket file says about it. */
export function probeOutcome(error: NodeJS.ErrnoException, socketPath: string): ProbeResult {
  if (error.code === 'ECONNREFUSED') return 'stale';
  if (error.code === 'ENOENT') return 'gone';
  // A full backlog means someone is listening; a socket of another type is bound there and alive.
  if (error.code === 'EAGAIN' || error.code === 'EPROTOTYPE') return 'live';
  throw fromSystemError(error, `Cannot probe the existing socket file ${socketPath}`);
}

/** Is anything accepting stream connections at this socket file? */
export function probeStream(socketPath: string): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    socket.once('connect', () => {
      socket.destroy();
      resolve('live');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      try {
        resolve(probeOutcome(error, socketPath));
      } catch (failure) {
        reject(failure);
      }
    });
  });
}

/**
 * Moves the staged socket to `target`: link if absent, replace if stale, refuse otherwise.
 * Returns with the staged name removed.
 */
async function placeSocket(staged: string, target: string, takeOver: boolean, binder: SocketFileBinder): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await fsp.link(staged, target);
      await fsp.unlink(staged);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
        // No hard links here (some filesystems): fall back to check-then-rename.
        if (lstatOrNull(target) === null) {
          await fsp.rename(staged, target);
          return;
        }
      } else if (code !== 'EEXIST') {
        throw fromSystemError(error, `Cannot create the socket file ${target}`, undefined, { path: target });
      }
    }
    const existing = await staleOrNull(target, takeOver, binder);
    if (existing !== null) {
      await fsp.rename(staged, target); // atomic: the name is never absent
      return;
    }
  }
  throw addressInUse(target, 'the path kept changing while we tried to bind it; try again.');
}

/**
 * What is at `target`: null when nothing is (any more), the stale socket file's stats when it may
 * be replaced; throws EADDRINUSE for a non-socket, a live socket, or any socket without takeOver.
 */
async function staleOrNull(target: string, takeOver: boolean, binder: SocketFileBinder): Promise<fs.Stats | null> {
  const existing = lstatOrNull(target);
  if (existing === null) return null;
  if (!existing.isSocket()) {
    throw addressInUse(target, 'a file that is not a socket is in the way, and interprocess never removes one. Remove it yourself or choose another path.');
  }
  if (!takeOver) throw addressInUse(target, 'a socket file exists (takeOver is off, so it is not probed or replaced).');
  const state = await binder.probe(target);
  if (state === 'live') throw addressInUse(target, 'another server is listening there. Stop it first or choose another name.');
  return state === 'stale' ? existing : null;
}

/** Binds at `target` itself, replacing a stale socket file (under our lock) just before. */
async function bindInPlace(target: string, options: BindOptions, binder: SocketFileBinder): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const stale = await staleOrNull(target, options.takeOver ?? true, binder);
    if (stale !== null && sameFile(lstatOrNull(target), stale)) {
      try {
        fs.unlinkSync(target);
      } catch {
        /* gone meanwhile */
      }
    }
    try {
      await binder.bind(target, options.mode);
      // Restore bits the umask took, only on the socket we just bound (chmod follows a link that
      // another user could have put in its place; this narrows that to the instant between).
      const bound = lstatOrNull(target);
      if (options.mode !== undefined && bound !== null && bound.isSocket() && bound.uid === process.getuid?.()) await fsp.chmod(target, options.mode);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
  }
  throw addressInUse(target, 'the path kept changing while we tried to bind it; try again.');
}

/** Binds a net.Server (listening with `backlog`) through bindSocketFile(). */
export function netServerBinder(server: net.Server, backlog: number | undefined): SocketFileBinder {
  return {
    bind: (staged) => listenOn(server, { path: staged, backlog }),
    abort: () => {
      if (server.listening) server.close();
    },
    probe: probeStream,
    inPlace: false,
  };
}

/** Binds a socket to the socket file `socketPath` through `binder`; see the top of this file. */
export async function bindSocketFile(socketPath: string, options: BindOptions, binder: SocketFileBinder): Promise<SocketFile> {
  const lock = await takeLock(socketPath);
  if (lock === null) {
    throw addressInUse(socketPath, `another interprocess server holds its lock file ${socketPath}.lock and is listening. Stop it first or choose another name.`);
  }
  let staging: Staging | null = null;
  try {
    if (options.takeOver === false && lstatOrNull(socketPath) !== null) {
      throw addressInUse(socketPath, 'a file exists there (takeOver is off, so it is not probed or replaced).');
    }
    let stats: fs.Stats;
    if (binder.inPlace) {
      await bindInPlace(socketPath, options, binder);
      stats = await fsp.lstat(socketPath);
    } else {
      staging = await makeStagingDirectory(path.dirname(socketPath), socketPath);
      const staged = path.join(staging.via, 's');
      await binder.bind(staged, options.mode);
      if (options.mode !== undefined) await fsp.chmod(staged, options.mode);
      stats = await fsp.lstat(staged);
      await placeSocket(staged, socketPath, options.takeOver ?? true, binder);
    }
    const file: SocketFile = { path: socketPath, dev: stats.dev, ino: stats.ino, lockFd: lock.fd, lockPath: lock.lockPath };
    own(file);
    return file;
  } catch (error) {
    binder.abort();
    if (lock.fd >= 0) releaseLock(lock.fd, lock.lockPath);
    throw fromSystemError(error, `Cannot listen on ${socketPath}`, undefined, { path: socketPath });
  } finally {
    if (staging !== null) removeStaging(staging);
  }
}

function own(file: SocketFile): void {
  owned.add(file);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const f of owned) releaseSocketFile(f);
    });
  }
}

/** Removes the socket file if it is still the one we created, and releases its lock. Sync: runs on exit. */
export function releaseSocketFile(file: SocketFile): void {
  if (!owned.delete(file)) return;
  if (sameFile(lstatOrNull(file.path), { dev: file.dev, ino: file.ino } as fs.Stats)) {
    try {
      fs.unlinkSync(file.path);
    } catch {
      /* removed by someone else meanwhile */
    }
  }
  if (file.lockFd >= 0) releaseLock(file.lockFd, file.lockPath);
  file.lockFd = -1;
}

/**
 * Makes the private directory for namespaced names (and subdirectories below it) if needed, and
 * refuses one that another user owns or others can enter.
 */
export async function ensurePrivateDirectory(root: string, socketPath: string): Promise<void> {
  await fsp.mkdir(root, { recursive: true, mode: 0o700 });
  const stats = await fsp.lstat(root);
  const uid = process.getuid?.();
  if (!stats.isDirectory() || (uid !== undefined && stats.uid !== uid) || (stats.mode & 0o077) !== 0) {
    throw new InterprocessError('EACCES', `The namespace directory ${root} is not private to this user (it must be a directory owned by uid ${uid} with mode 0700). Remove it, or set XDG_RUNTIME_DIR to a private directory.`, { path: root });
  }
  const parent = path.dirname(socketPath);
  if (parent !== root) await fsp.mkdir(parent, { recursive: true, mode: 0o700 });
}
