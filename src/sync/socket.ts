/**
 * The blocking local-socket client: connect, write and read from synchronous code (a CLI's status
 * command, a config loader, a require hook). Every call waits on the calling thread only, in the
 * addon (native/unix/sync.c: poll(2) on a non-blocking socket; native/windows/sync.c: overlapped
 * I/O waited for with WaitForSingleObject), never on libuv's thread pool; in a worker thread it
 * blocks that worker alone.
 *
 * Names are resolved by toName() as every connect of the package resolves them, so a name reaches
 * exactly what listen() listens on: a socket file, a Linux abstract name, the Windows pipe
 * namespace, or the per-user directory elsewhere.
 *
 * Reads go through a buffer of our own: readExact() and readUntil() take what they need and leave
 * the rest for the next read. Nothing accepted is lost: bytes read before a timeout stay for the
 * next call, and the end of the stream in the middle of readExact()/readUntil() is an error that
 * carries them (`data`).
 */
import { type PeerCredentials, pipeCredentials, unixCredentials } from '../credentials.js';
import { InterprocessError, fromSystemError, invalidArgument, invalidType, outOfRange } from '../errors.js';
import { type LocalSocketName, toName } from '../local-socket/name.js';
import { closeFd, closeFdQuietly } from '../native/fds.js';
import { requireNative } from '../native/addon.js';
import { isWindows } from '../platform.js';
import { BUSY_LIMIT_MS, NOT_YET, connectError } from '../socket-connect.js';
import { type NativeSync, checkTimeout, deadlineOf, leftOf, optionsOf, sleepSync } from './native.js';

/** Options of {@link connectSync}. */
export interface ConnectSyncOptions {
  /** Keep retrying while nothing listens there yet (or its backlog is full), until `timeout` (default false). */
  wait?: boolean;
  /** Give up after this many milliseconds with ETIMEDOUT (default: no limit). */
  timeout?: number;
}

/** Options of a {@link SyncLocalSocket} call: how long it may block. */
export interface SyncCallOptions {
  /** Give up after this many milliseconds with ETIMEDOUT (default: no limit). Bytes read before it stay for the next read. */
  timeout?: number;
}

/** Options of {@link SyncLocalSocket.readUntil}. */
export interface ReadUntilOptions extends SyncCallOptions {
  /**
   * The most bytes to take, the delimiter included (default 16 MiB): a peer that sends more
   * without the delimiter fails the call with ERR_INTERPROCESS_MESSAGE_TOO_LARGE, its bytes kept
   * for read().
   */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
/** How much one read() from the OS takes at most into our buffer. */
const CHUNK = 64 * 1024;

type Handle = number | object;

/**
 * A socket dropped without close() closes its descriptor when it is collected (Unix; on Windows
 * the addon's external does the same for its handle). close() takes it out of here first, so a
 * number closed once is never closed again after the OS has given it to someone else.
 */
const dropped = new FinalizationRegistry<number>((fd) => closeFdQuietly(fd));

function timedOut(call: string, timeout: number, what: string): InterprocessError {
  return new InterprocessError('ETIMEDOUT', `${call} timed out after ${timeout} ms ${what}`, { syscall: isWindows ? 'WaitForSingleObject' : 'poll' });
}

/**
 * A connected local socket whose calls block the calling thread: made by {@link connectSync}.
 * `write()` sends all of its bytes; `read()` returns what is there (up to a maximum), `readExact(n)`
 * exactly n bytes, `readUntil(delimiter)` up to and including a delimiter. Each call takes a
 * `timeout`. `close()` (or `using socket = connectSync(...)`) releases it; calls after close fail
 * with ERR_INTERPROCESS_CLOSED.
 */
export class SyncLocalSocket implements Disposable {
  readonly #name: LocalSocketName;
  readonly #native: NativeSync;
  #handle: Handle | null;
  #credentials: PeerCredentials | null = null;
  /** Received bytes not yet taken: #buffer[#start, #end). */
  #buffer: Buffer = Buffer.alloc(0);
  #start = 0;
  #end = 0;
  #ended = false;

  /** @internal Use connectSync(). */
  constructor(name: LocalSocketName, native: NativeSync, handle: Handle) {
    this.#name = name;
    this.#native = native;
    this.#handle = handle;
    if (typeof handle === 'number') dropped.register(this, handle, this);
  }

  /** The name this socket connected to. */
  get name(): LocalSocketName {
    return this.#name;
  }

  /** True once close() has been called. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /** Bytes received and not yet taken by a read (read ahead by readUntil, or kept after a timeout). */
  get readableLength(): number {
    return this.#end - this.#start;
  }

  #open(call: string): Handle {
    if (this.#handle === null) throw new InterprocessError('ERR_INTERPROCESS_CLOSED', `${call}: the socket is closed`);
    return this.#handle;
  }

  /**
   * The pid, uid and gid of the process at the other end (on Windows the server's process id),
   * read once, on the first call; it answers after close too, if asked once before.
   */
  peerCredentials(): PeerCredentials {
    if (this.#credentials !== null) return this.#credentials;
    const handle = this.#open('peerCredentials()');
    try {
      this.#credentials = isWindows ? pipeCredentials(this.#native.serverProcessId!(handle as object)) : unixCredentials(requireNative('peerCredentials()').peerCredentials(handle as number));
    } catch (error) {
      throw fromSystemError(error, `Cannot read the peer credentials of the connection to ${this.#name}`);
    }
    return this.#credentials;
  }

  /**
   * Sends all of `data` (a string is sent as UTF-8), blocking while the peer does not read, up to
   * `timeout`. ETIMEDOUT says how many bytes went (`bytesWritten`); so does EPIPE or ECONNRESET
   * when the peer is gone.
   */
  write(data: string | Uint8Array, options?: SyncCallOptions): void {
    const { timeout } = optionsOf(options);
    const ms = checkTimeout(timeout);
    const handle = this.#open('write()');
    let bytes: Buffer;
    if (typeof data === 'string') bytes = Buffer.from(data, 'utf8');
    else if (data instanceof Uint8Array) bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    else throw invalidType('data', 'a string, Buffer or Uint8Array', data);
    if (bytes.length === 0) return;
    let written: number;
    try {
      written = this.#native.write(handle, bytes, 0, bytes.length, ms);
    } catch (error) {
      const hint = 'The peer has closed the connection (or was killed): what it did not read is lost.';
      const bytesWritten = (error as { bytesWritten?: number }).bytesWritten;
      throw fromSystemError(error, `write() to ${this.#name} failed after ${bytesWritten ?? 0} of ${bytes.length} bytes`, hint, { bytesWritten });
    }
    if (written < bytes.length) {
      const error = timedOut('write()', ms, `with ${written} of ${bytes.length} bytes sent (the peer is not reading)`);
      throw Object.assign(error, { bytesWritten: written });
    }
  }

  /** Reads once from the OS into our buffer: the bytes read, 0 at the end, -1 out of time. */
  #fill(call: string, deadline: number, timeout: number): number {
    const handle = this.#open(call);
    if (this.#ended) return 0;
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
    }
    if (this.#buffer.length - this.#end < CHUNK) {
      const kept = this.#end - this.#start;
      const grown = Buffer.allocUnsafe(Math.max(kept + CHUNK, this.#buffer.length > kept * 2 ? this.#buffer.length : kept * 2));
      this.#buffer.copy(grown, 0, this.#start, this.#end);
      this.#buffer = grown;
      this.#start = 0;
      this.#end = kept;
    }
    let n: number;
    try {
      n = this.#native.read(handle, this.#buffer, this.#end, this.#buffer.length - this.#end, leftOf(deadline, timeout));
    } catch (error) {
      throw fromSystemError(error, `${call} from ${this.#name} failed`);
    }
    if (n === 0) this.#ended = true;
    if (n > 0) this.#end += n;
    return n;
  }

  #take(length: number): Buffer {
    const taken = Buffer.from(this.#buffer.subarray(this.#start, this.#start + length));
    this.#start += length;
    return taken;
  }

  #truncated(call: string, what: string): InterprocessError {
    const data = this.#take(this.#end - this.#start);
    return new InterprocessError('ERR_INTERPROCESS_TRUNCATED', `${call}: the peer closed the connection ${what}; the ${data.length} bytes that came are in error.data`, { data });
  }

  /**
   * Reads what has arrived, at least 1 byte and at most `maxBytes` (default 64 KiB), blocking until
   * something comes, up to `timeout`. Returns null at the end of the stream (the peer closed).
   */
  read(maxBytes: number = CHUNK, options?: SyncCallOptions): Buffer | null {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw outOfRange('maxBytes', 'a positive integer', maxBytes);
    const { timeout } = optionsOf(options);
    const ms = checkTimeout(timeout);
    this.#open('read()');
    if (this.#start === this.#end) {
      const n = this.#fill('read()', deadlineOf(ms), ms);
      if (n < 0) throw timedOut('read()', ms, 'with nothing received');
      if (n === 0) return null;
    }
    return this.#take(Math.min(maxBytes, this.#end - this.#start));
  }

  /**
   * Reads exactly `length` bytes, blocking up to `timeout` for all of them. If the peer closes
   * first: ERR_INTERPROCESS_TRUNCATED with the bytes that did come in `error.data`. On ETIMEDOUT
   * the bytes that came stay for the next read.
   */
  readExact(length: number, options?: SyncCallOptions): Buffer {
    if (!Number.isSafeInteger(length) || length < 0) throw outOfRange('length', 'a non-negative integer', length);
    const { timeout } = optionsOf(options);
    const ms = checkTimeout(timeout);
    this.#open('readExact()');
    const deadline = deadlineOf(ms);
    while (this.#end - this.#start < length) {
      const n = this.#fill('readExact()', deadline, ms);
      if (n < 0) throw timedOut('readExact()', ms, `with ${this.#end - this.#start} of ${length} bytes received (they stay for the next read)`);
      if (n === 0) throw this.#truncated('readExact()', `after ${this.#end - this.#start} of ${length} bytes`);
    }
    return this.#take(length);
  }

  /**
   * Reads up to and including the first `delimiter` (a string as UTF-8, or bytes; `'\n'` for lines),
   * blocking up to `timeout`; what follows the delimiter stays for the next read. Fails with
   * ERR_INTERPROCESS_MESSAGE_TOO_LARGE when `maxBytes` arrive without it, ERR_INTERPROCESS_TRUNCATED
   * (the bytes in `error.data`) when the peer closes first; in both cases and on ETIMEDOUT, no
   * byte is lost.
   */
  readUntil(delimiter: string | Uint8Array, options?: ReadUntilOptions): Buffer {
    const { timeout, maxBytes = DEFAULT_MAX_BYTES } = optionsOf(options);
    const ms = checkTimeout(timeout);
    const needle = typeof delimiter === 'string' ? Buffer.from(delimiter, 'utf8') : delimiter instanceof Uint8Array ? delimiter : null;
    if (needle === null) throw invalidType('delimiter', 'a string, Buffer or Uint8Array', delimiter);
    if (needle.length === 0) throw invalidArgument('delimiter', 'must not be empty');
    if (!Number.isSafeInteger(maxBytes) || maxBytes < needle.length) throw outOfRange('options.maxBytes', `an integer of at least the delimiter's length (${needle.length})`, maxBytes);
    this.#open('readUntil()');
    const deadline = deadlineOf(ms);
    let searched = 0;
    for (;;) {
      const available = this.#end - this.#start;
      const window = this.#buffer.subarray(this.#start, this.#start + Math.min(available, maxBytes));
      const at = window.indexOf(needle, Math.max(0, searched - needle.length + 1));
      if (at >= 0) return this.#take(at + needle.length);
      searched = window.length;
      if (available >= maxBytes) {
        throw new InterprocessError('ERR_INTERPROCESS_MESSAGE_TOO_LARGE', `readUntil(): ${maxBytes} bytes (options.maxBytes) came from ${this.#name} without the delimiter; they stay for read()`, { size: available });
      }
      const n = this.#fill('readUntil()', deadline, ms);
      if (n < 0) throw timedOut('readUntil()', ms, `with ${this.#end - this.#start} bytes received and no delimiter (they stay for the next read)`);
      if (n === 0) throw this.#truncated('readUntil()', `before the delimiter came (after ${this.#end - this.#start} bytes)`);
    }
  }

  /** Closes the socket (a second call does nothing). Bytes read ahead and not taken are dropped. */
  close(): void {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    this.#buffer = Buffer.alloc(0);
    this.#start = this.#end = 0;
    if (typeof handle === 'number') {
      dropped.unregister(this);
      closeFd(handle);
    } else {
      this.#native.close!(handle);
    }
  }

  /** `using socket = connectSync(...)` closes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** One connect attempt: the handle, or null when the timeout passed first. */
function attempt(native: NativeSync, name: LocalSocketName, left: number, wait: boolean): Handle | null {
  if (isWindows) {
    const handle = native.connect(name.address, left, wait ? -1 : BUSY_LIMIT_MS);
    return handle === -1 ? null : (handle as Handle);
  }
  const fd = native.connect(Buffer.from(name.address), left) as number;
  return fd === -1 ? null : fd;
}

/**
 * Connects to the listener at `name` (a path string, `'@NAME'` for nsName('NAME'), or a name from
 * fsName()/nsName()) and returns a {@link SyncLocalSocket}, blocking the calling thread (and only
 * it) until connected. Fails as connect() does: ENOENT or ECONNREFUSED when nothing listens there
 * (unless `wait`), EACCES, ETIMEDOUT after `timeout`.
 */
export function connectSync(name: string | LocalSocketName, options?: ConnectSyncOptions): SyncLocalSocket {
  const resolved = toName(name);
  const { wait = false, timeout } = optionsOf(options);
  if (typeof wait !== 'boolean') throw invalidType('options.wait', 'a boolean', wait);
  const ms = checkTimeout(timeout);
  const native = (requireNative('connectSync()') as unknown as { sync: NativeSync }).sync;
  const deadline = deadlineOf(ms);
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    let handle: Handle | null;
    try {
      handle = attempt(native, resolved, leftOf(deadline, ms), wait);
    } catch (error) {
      const left = leftOf(deadline, ms);
      if (wait && left === 0) {
        handle = null; // out of time while waiting: ETIMEDOUT, as connect() says
      } else if (!wait || !NOT_YET.has((error as { code?: string }).code ?? '')) {
        throw connectError(error, resolved);
      } else {
        sleepSync(left < 0 ? delay : Math.min(delay, left));
        continue;
      }
    }
    if (handle === null) throw new InterprocessError('ETIMEDOUT', `connectSync() to ${resolved} timed out after ${ms} ms`, { syscall: 'connect', address: resolved.address });
    return new SyncLocalSocket(resolved, native, handle);
  }
}
