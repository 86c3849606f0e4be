/**
 * FIFO files (named pipes on Unix). Opening one the ordinary way blocks until the other side
 * opens too, and in Node that blocks a thread-pool thread (Node issue #23220: four such opens
 * freeze all of `fs`). Here nothing blocks: a reader opens at once (O_NONBLOCK), and a writer,
 * which the kernel refuses (ENXIO) until a reader exists, fails at once or (with `wait`) retries
 * on a timer.
 */
import fs from 'node:fs';
import { InterprocessError, fromSystemError, invalidArgument, invalidType, unsupported } from '../errors.js';
import { requireNative } from '../native/addon.js';
import { closeFd, handToNode } from '../native/fds.js';
import { isWindows } from '../platform.js';
import { PipeReceiver, PipeSender, type ReceiverOptions } from '../pipe/end.js';
import { descriptorKind } from '../pipe/sync-io.js';
import { type RetryOptions, checkRetryOptions, retry } from '../retry.js';

/** Options of {@link createFifo}. */
export interface CreateFifoOptions {
  /** Permissions of the FIFO (default 0o600), applied exactly, never wider while it is created. */
  mode?: number;
  /** If a FIFO is already at the path, use it (a file of another kind is still an error). */
  reuse?: boolean;
}

function checkPath(path: unknown): asserts path is string {
  if (typeof path !== 'string') throw invalidType('path', 'a string', path);
  if (path.length === 0) throw invalidArgument('path', 'must not be empty');
  if (path.includes('\0')) throw invalidArgument('path', 'must not contain a NUL character');
  if (isWindows) throw unsupported('FIFO files', 'Windows has no FIFO files; use a named pipe (local sockets) instead.');
}

/** Creates a FIFO at `path` (mkfifo). Fails with EEXIST if something is there, unless `reuse` finds a FIFO. */
export async function createFifo(path: string, options: CreateFifoOptions = {}): Promise<void> {
  checkPath(path);
  const { mode = 0o600, reuse = false } = options;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw invalidArgument('options.mode', `must be a permission mode from 0 to 0o777; got ${String(mode)}`);
  const native = requireNative('createFifo()');
  try {
    native.mkfifo(path, mode); // the umask can only narrow it; chmod then makes it exact
    fs.chmodSync(path, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(error, `Cannot create the FIFO ${path}`, undefined, { path });
    const existing = fs.lstatSync(path, { throwIfNoEntry: false });
    if (reuse && existing?.isFIFO()) return;
    const what = existing?.isFIFO() ? 'a FIFO is already there (pass { reuse: true } to use it)' : 'something that is not a FIFO is already there';
    throw new InterprocessError('EEXIST', `Cannot create the FIFO ${path}: ${what}`, { path, syscall: 'mkfifo' });
  }
}

/**
 * Opens `path` non-blocking and close-on-exec, checking that it is a FIFO (a regular file would
 * "work" wrongly). The addon opens it, not fs.openSync: in a worker Node would close an fs-opened
 * descriptor again at exit, after the stream that owns it had closed it (see native/fds.ts). The
 * descriptor is in the addon's registry until a stream owns it or closeFd closes it.
 */
function openFifo(path: string, forWriting: boolean): number {
  const fd = requireNative('Opening a FIFO').openFifo(path, forWriting);
  let isFifo: boolean;
  try {
    isFifo = descriptorKind(fd) === 'fifo';
  } catch (error) {
    closeFd(fd);
    throw error;
  }
  if (!isFifo) {
    closeFd(fd);
    throw new InterprocessError('ERR_INVALID_ARG_VALUE', `${path} is not a FIFO; create one with createFifo() or mkfifo(1)`, { path });
  }
  return fd;
}

/** A stream over a descriptor openFifo() gave: it owns the descriptor, or it is closed. */
function wrap<T>(fd: number, make: (fd: number) => T): T {
  try {
    return handToNode(fd, () => make(fd));
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/**
 * Options of {@link openFifoReader}; `onChunk` and `readBuffer` read into one reused buffer
 * instead of streaming (see {@link ReceiverOptions}).
 */
export interface FifoReaderOptions extends ReceiverOptions {
  /**
   * Stay open across writers: hold a write end of our own, so the reader never sees end of
   * stream when a writer closes and the next one can come (default false: end of stream once
   * the last writer closes).
   */
  keepOpen?: boolean;
}

/**
 * Opens the FIFO for reading, at once (no writer needed yet). The reader is a Readable stream; it
 * ends when the last writer closes (after at least one has opened), unless `keepOpen`.
 */
export function openFifoReader(path: string, options: FifoReaderOptions = {}): PipeReceiver {
  checkPath(path);
  let fd: number;
  try {
    fd = openFifo(path, false);
  } catch (error) {
    throw fromSystemError(error, `Cannot open the FIFO ${path} for reading`, undefined, { path });
  }
  const reader = wrap(fd, (readFd) => new PipeReceiver(readFd, options));
  if (options.keepOpen) {
    // A reader exists now, so this non-blocking open for writing succeeds at once (unless the
    // FIFO's mode refuses writing). The keeper stays in the addon's registry until closed.
    let keeper: number;
    try {
      keeper = openFifo(path, true);
    } catch (error) {
      reader.destroy();
      throw fromSystemError(error, `Cannot keep the FIFO ${path} open (keepOpen opens it for writing too)`, undefined, { path });
    }
    reader.once('close', () => closeFd(keeper));
  }
  return reader;
}

/** Options of {@link openFifoWriter}. */
export interface FifoWriterOptions extends RetryOptions {
  /**
   * Wait for a reader to open the FIFO, and for the FIFO to exist (default false, as every
   * connect: without it the call fails at once with ENXIO if there is no reader, ENOENT if there
   * is no FIFO, each saying to pass `wait: true`).
   */
  wait?: boolean;
}

const NOT_YET = new Set(['ENXIO', 'ENOENT']);

/**
 * Opens the FIFO for writing. A reader must have it open: without one this fails at once with a
 * typed ENXIO, unless `wait: true`, which retries every few milliseconds (within `timeout`,
 * cancellable through `signal`) without blocking any thread. The writer is a Writable stream with
 * backpressure.
 */
export async function openFifoWriter(path: string, options: FifoWriterOptions = {}): Promise<PipeSender> {
  checkPath(path);
  checkRetryOptions(options);
  const { wait = false } = options;
  const cannot = `Cannot open the FIFO ${path} for writing`;
  return retry({ ...options, wait }, {
    notYet: NOT_YET, // no reader yet (ENXIO), or no FIFO yet (ENOENT)
    timedOut: (timeout) => new InterprocessError('ETIMEDOUT', `No reader opened the FIFO ${path} within ${timeout} ms`, { path, syscall: 'open' }),
    failed: (error) => {
      const code = (error as NodeJS.ErrnoException).code;
      const hint =
        code === 'ENXIO' ? 'No reader has it open (ENXIO); pass { wait: true } to wait for one.'
        : code === 'ENOENT' ? 'There is no FIFO there yet; create it with createFifo(), or pass { wait: true } to wait for it.'
        : undefined;
      return fromSystemError(error, cannot, hint, { path });
    },
    firstDelay: 1,
    maxDelay: 25,
  }, () => wrap(openFifo(path, true), (fd) => new PipeSender(fd)));
}
