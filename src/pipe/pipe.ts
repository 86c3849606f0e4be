/**
 * Unnamed pipes: a connected pair in this process, and handing an end to a child process.
 */
import { type ChildProcess, type SpawnOptions, type StdioOptions, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { requireNative } from '../native/addon.js';
import { closeFd, handToNode } from '../native/fds.js';
import { isWindows } from '../platform.js';
import { descriptorOf } from '../unix-socket/descriptor-symbol.js';
import { type HasDescriptor, toDescriptor } from '../unix-socket/descriptors.js';
import { PipeReceiver, PipeSender, type ReceiverOptions } from './end.js';

/**
 * Default pipe buffer on Linux: 256 KiB. The kernel's 64 KiB makes writer and reader take turns
 * often; measured here (`npm run bench`, pipe rows and --pipe-size), 256 KiB ties for the best
 * throughput while 1 MiB and 4 MiB are never faster (Node reads 64 KiB per read() whatever the
 * size) and pin four to sixteen times the memory, counted against the per-user pipe quota
 * (/proc/sys/fs/pipe-user-pages-soft). Capped by /proc/sys/fs/pipe-max-size.
 */
export const DEFAULT_PIPE_SIZE = 256 * 1024;

/** Options of {@link pipe}. */
export interface PipeOptions {
  /**
   * Linux: the pipe's buffer size in bytes (rounded up by the kernel to a power-of-two number of
   * pages). Default {@link DEFAULT_PIPE_SIZE}, or the system's maximum if that is lower; an
   * explicit size above /proc/sys/fs/pipe-max-size fails with EPERM unless privileged.
   * Windows: the buffer size the pipe is created with (default 65536). Elsewhere the OS decides
   * and this is ignored.
   */
  size?: number;
  /**
   * Options of the receiving end: `{ onChunk, readBuffer }` reads into one reused buffer instead
   * of streaming (see {@link ReceiverOptions}). Reading then starts at once, so use it for an end
   * read in this process, not one handed to a child.
   */
  receiver?: ReceiverOptions;
}

/** A connected pipe: what is written to `sender` comes out of `receiver`. */
export interface Pipe {
  /** The end to write to. */
  readonly sender: PipeSender;
  /** The end to read from. */
  readonly receiver: PipeReceiver;
}

let systemMax: number | undefined;
function pipeMaxSize(): number {
  if (systemMax === undefined) {
    try {
      systemMax = Number.parseInt(fs.readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'), 10) || DEFAULT_PIPE_SIZE;
    } catch {
      systemMax = DEFAULT_PIPE_SIZE;
    }
  }
  return systemMax;
}

/**
 * Creates a pipe. Both ends are close-on-exec (they never leak into unrelated children) and
 * non-blocking streams on Node's loop. The receiver sees end of stream once every copy of the
 * sender is closed (in this process and in any child it was handed to).
 */
export function pipe(options: PipeOptions = {}): Pipe {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { size } = options;
  if (size !== undefined && (!Number.isInteger(size) || size <= 0)) throw invalidArgument('options.size', `must be a positive integer number of bytes; got ${String(size)}`);
  const native = requireNative('pipe()');
  if (isWindows) {
    // Windows: a named pipe pair of ours (as libuv makes them): both ends overlapped, local only.
    const [readFd, writeFd] = native.namedPipe.pair(size ?? 65536);
    let receiver: PipeReceiver;
    try {
      receiver = new PipeReceiver(readFd, options.receiver);
    } catch (error) {
      fs.closeSync(readFd);
      fs.closeSync(writeFd);
      throw error;
    }
    return { sender: new PipeSender(writeFd), receiver };
  }
  // Both descriptors are in the addon's registry until their streams own them (see native/fds.ts).
  let readFd: number, writeFd: number;
  try {
    [readFd, writeFd] = native.pipe() as [number, number];
  } catch (error) {
    throw fromSystemError(error, 'Cannot create a pipe'); // the addon's EMFILE hint comes with it
  }
  let receiver: PipeReceiver;
  try {
    if (process.platform === 'linux') {
      try {
        native.pipeSize(writeFd, size ?? Math.min(DEFAULT_PIPE_SIZE, pipeMaxSize()));
      } catch (error) {
        // The default is an optimisation: keep the kernel's size if this user is out of pipe memory.
        if (size !== undefined) throw fromSystemError(error, `Cannot set the pipe size to ${size} bytes`, 'Above /proc/sys/fs/pipe-max-size only a privileged process may; leave size unset for the best allowed.');
      }
    }
    // The receiver first: its options may be refused, and then no stream owns either descriptor.
    receiver = handToNode(readFd, () => new PipeReceiver(readFd, options.receiver));
  } catch (error) {
    closeFd(readFd);
    closeFd(writeFd);
    throw error;
  }
  try {
    return { sender: handToNode(writeFd, () => new PipeSender(writeFd)), receiver };
  } catch (error) {
    receiver.destroy(); // it owns readFd
    closeFd(writeFd);
    throw error;
  }
}

/** The buffer size of a pipe end in bytes (Linux), or null where the OS does not tell it. */
export function pipeSize(end: PipeSender | PipeReceiver): number | null {
  if (isWindows) return null;
  const size = requireNative('pipeSize()').pipeSize(end.fd);
  return size < 0 ? null : size;
}

/**
 * What {@link spawnWith} can put at a child's descriptor: a pipe end, a socket of interprocess (a
 * UnixSocket, e.g. one end of `unixSocketPair()`), a `net.Socket`, anything else that owns a
 * descriptor ({@link HasDescriptor}), or a plain descriptor number of this process.
 */
export type ChildDescriptor = PipeSender | PipeReceiver | HasDescriptor | net.Socket | number;

/** Options of {@link spawnWith}: those of `child_process.spawn()`, plus `fds`. */
export interface SpawnWithOptions extends SpawnOptions {
  /**
   * Descriptors for the child: `{ 3: receiver, 4: sender }` puts those pipe ends at fd 3 and fd 4
   * of the child (which takes them back with `PipeReceiver.fromFd(3)` / `PipeSender.fromFd(4)`);
   * a socket (a UnixSocket such as the other end of `unixSocketPair()`, or a net.Socket) goes the
   * same way (the child adopts it with `unixSocketFromFd(3)` or `new net.Socket({ fd: 3 })`).
   * Objects passed here are made blocking for the child (as ordinary programs expect) and closed
   * in this process once the child has them. A plain number passes that descriptor of this
   * process as it is, and it stays open here.
   */
  fds: Record<number, ChildDescriptor>;
}

/** Closes this process's copy of an object handed to a child. */
function closeHandedOver(owner: object): void {
  const { destroy, close } = owner as { destroy?: () => unknown; close?: () => unknown };
  if (typeof destroy === 'function') {
    destroy.call(owner);
  } else if (typeof close === 'function') {
    Promise.resolve(close.call(owner)).catch(() => {}); // nothing to report: the child has its copy
  }
}

/**
 * `child_process.spawn()` that hands pipe ends and sockets to the child at chosen descriptor
 * numbers, then closes this process's copies, so that end of stream works as expected on both sides.
 */
export function spawnWith(command: string, args: readonly string[], options: SpawnWithOptions): ChildProcess {
  if (options === null || typeof options !== 'object' || options.fds === null || typeof options.fds !== 'object') {
    throw invalidType('options.fds', 'an object mapping child descriptor numbers to pipe ends or sockets', options?.fds);
  }
  const { fds, ...spawnOptions } = options;
  const stdio: Exclude<StdioOptions, string> = normalizeStdio(spawnOptions.stdio);
  const handedOver: Array<{ owner: object; fd: number }> = [];
  for (const [key, end] of Object.entries(fds)) {
    const target = Number(key);
    if (!Number.isInteger(target) || target < 0) throw invalidArgument('options.fds', `keys must be descriptor numbers; got ${JSON.stringify(key)}`);
    while (stdio.length <= target) stdio.push('ignore');
    const given = Array.isArray(spawnOptions.stdio) ? spawnOptions.stdio[target] : undefined;
    if (given !== undefined && given !== null && given !== 'ignore') {
      throw invalidArgument('options.fds', `puts a pipe end or socket at descriptor ${target}, where options.stdio already has ${JSON.stringify(given)}; choose another descriptor number`);
    }
    if (typeof end === 'number') {
      stdio[target] = toDescriptor(end, `options.fds[${key}]`);
    } else if (end instanceof PipeSender || end instanceof PipeReceiver) {
      stdio[target] = end.fd;
      handedOver.push({ owner: end, fd: end.fd });
    } else if (end !== null && typeof end === 'object' && (descriptorOf in end || end instanceof net.Socket)) {
      const fd = toDescriptor(end, `options.fds[${key}]`);
      stdio[target] = fd;
      handedOver.push({ owner: end, fd });
    } else {
      throw invalidType(`options.fds[${key}]`, 'a PipeSender, a PipeReceiver, a socket (UnixSocket, net.Socket) or a descriptor number', end);
    }
  }
  for (const { owner, fd } of handedOver) {
    if (owner instanceof PipeSender || owner instanceof PipeReceiver) owner.setBlocking(true);
    else if (!isWindows) requireNative('spawnWith() with a socket').setNonblocking(fd, false);
  }
  const child = spawn(command, args, { ...spawnOptions, stdio });
  // spawn() has forked by now: the child holds its copies, so ours can go.
  for (const { owner } of handedOver) closeHandedOver(owner);
  return child;
}

function normalizeStdio(stdio: StdioOptions | undefined): Exclude<StdioOptions, string> {
  if (stdio === undefined) return ['pipe', 'pipe', 'pipe'];
  if (typeof stdio === 'string') return [stdio, stdio, stdio] as Exclude<StdioOptions, string>;
  return [...stdio];
}
