/**
 * What the pipe ends do outside their stream: adopting a foreign descriptor, and the synchronous
 * reads and writes (a poll(2) wait in the addon between non-blocking attempts).
 */
import fs from 'node:fs';
import { InterprocessError, fromSystemError, invalidArgument, invalidType } from '../errors.js';
import { optionalNative, requireNative } from '../native/addon.js';
import { isWindows, runtime } from '../platform.js';

/** Options of the synchronous calls. */
export interface SyncOptions {
  /** Give up with ETIMEDOUT after this many milliseconds of waiting (default: wait as long as it takes). */
  timeout?: number;
}

function checkFd(fd: unknown): asserts fd is number {
  if (!Number.isInteger(fd) || (fd as number) < 0) throw invalidType('fd', 'a file descriptor (a non-negative integer)', fd);
}

const WHERE = 'Is it open in this process? A child gets it through spawn\'s stdio array, e.g. with spawnWith().';

/**
 * Whether `fd` is a FIFO (or pipe), a socket, or something else: fstat(2) through the addon, which
 * answers in every runtime (Deno's fs.fstatSync knows only the descriptors Deno opened).
 */
export function descriptorKind(fd: number): string {
  const native = optionalNative();
  if (native) return native.unixSockets.describe(fd).kind;
  const stats = fs.fstatSync(fd);
  return stats.isFIFO() ? 'fifo' : stats.isSocket() ? 'socket' : 'other';
}

/** Adopts an inherited or foreign descriptor: it must be a pipe, FIFO or socket. */
export function adoptFd(fd: number, what: string): void {
  checkFd(fd);
  if (isWindows) {
    // fstat reports no type for pipes there: ask Windows.
    let type: string;
    try {
      type = requireNative(`Using a descriptor as ${what}`).namedPipe.fdType(fd);
    } catch (error) {
      throw fromSystemError(error, `Cannot use descriptor ${fd} as ${what}`, WHERE);
    }
    if (type !== 'pipe') throw invalidArgument('fd', `must be a pipe, FIFO or socket to be used as ${what}; descriptor ${fd} is not (it is a ${type})`);
    return;
  }
  let kind: string;
  try {
    kind = descriptorKind(fd);
  } catch (error) {
    throw fromSystemError(error, `Cannot use descriptor ${fd} as ${what}`, WHERE);
  }
  if (kind !== 'fifo' && kind !== 'socket') {
    throw invalidArgument('fd', `must be a pipe, FIFO or socket to be used as ${what}; descriptor ${fd} is not`);
  }
  // An inherited descriptor is not close-on-exec: make it so, or it leaks into our own children.
  // (Windows handles are inherited only when handed over explicitly.)
  optionalNative()?.setCloexec(fd, true);
}

function checkTimeout(options: SyncOptions): number {
  const { timeout } = options;
  if (timeout === undefined) return -1;
  if (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout)) {
    throw invalidArgument('options.timeout', `must be a non-negative number of milliseconds; got ${String(timeout)}`);
  }
  return Math.ceil(timeout);
}

function timedOut(writable: boolean, timeout: number): InterprocessError {
  return new InterprocessError('ETIMEDOUT', `${writable ? 'writeSync' : 'readSync'} waited ${timeout} ms for the pipe to become ${writable ? 'writable' : 'readable'}`, { syscall: 'poll' });
}

/** Waits until `fd` is ready for the direction, or throws ETIMEDOUT. */
function waitReady(fd: number, writable: boolean, timeout: number): void {
  if (!requireNative(writable ? 'writeSync' : 'readSync').waitFd(fd, writable, timeout)) throw timedOut(writable, timeout);
}

/** Windows: one blocking overlapped read or write (the handles are overlapped; fs.readSync would misread them). */
function syncIoWindows(fd: number, buffer: Buffer, writable: boolean, timeout: number): number {
  let moved: number;
  try {
    moved = requireNative(writable ? 'writeSync' : 'readSync').namedPipe.syncIo(fd, buffer, writable, timeout);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (writable && (code === 'EPIPE' || code === 'EOF')) throw fromSystemError(error, 'writeSync failed', 'No receiver is left: every read end of the pipe is closed.');
    throw fromSystemError(error, `${writable ? 'writeSync' : 'readSync'} failed`);
  }
  if (moved < 0) throw timedOut(writable, timeout);
  return moved;
}

/** Deno's fs.readSync and fs.writeSync refuse (EBADF) every descriptor that Deno did not open itself. */
function checkRuntime(call: string): void {
  if (runtime === 'deno') {
    throw new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', `${call} is not supported under Deno: Deno's fs reads and writes only descriptors it opened itself (not a pipe's). Use the stream (${call === 'readSync' ? "'data' events or read()" : 'write()'}) instead.`);
  }
}

/** Reads at least one byte from `fd` into `target` (0: end of stream), blocking up to the timeout. */
export function readFdSync(fd: number, target: Buffer, options: SyncOptions): number {
  const timeout = checkTimeout(options);
  checkRuntime('readSync');
  if (isWindows) return syncIoWindows(fd, target, false, timeout);
  for (;;) {
    try {
      return fs.readSync(fd, target, 0, target.length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw fromSystemError(error, 'readSync failed');
    }
    waitReady(fd, false, timeout);
  }
}

/** Checks the options of a synchronous call before anything else is done. */
export function checkSyncOptions(options: SyncOptions, call: 'readSync' | 'writeSync'): void {
  checkTimeout(options);
  checkRuntime(call);
}

/** Writes all of `bytes` to `fd`, blocking while the pipe is full, up to the timeout. */
export function writeFdSync(fd: number, bytes: Buffer, options: SyncOptions): number {
  const timeout = checkTimeout(options);
  checkRuntime('writeSync');
  let written = 0;
  while (isWindows && written < bytes.length) written += syncIoWindows(fd, bytes.subarray(written), true, timeout);
  while (written < bytes.length) {
    try {
      written += fs.writeSync(fd, bytes, written, bytes.length - written);
      continue;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') throw fromSystemError(error, 'writeSync failed', 'No receiver is left: every read end of the pipe is closed.');
      if (code !== 'EAGAIN') throw fromSystemError(error, 'writeSync failed');
    }
    waitReady(fd, true, timeout);
  }
  return written;
}
