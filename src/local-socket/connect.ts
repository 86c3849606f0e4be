/**
 * Connecting to a local socket: one attempt, or with `wait`, attempts until a listener appears
 * (the Rust crate's ConnectWaitMode), all within `timeout` and cancellable through `signal`.
 */
import { InterprocessError, fromSystemError } from '../errors.js';
import { type Attempt, type RetryOptions, retry } from '../retry.js';
import { type LocalSocketName, toName } from './name.js';
import { LocalSocket, setSocketName, socketOverPipe } from './stream.js';
import { requireNative } from '../native/addon.js';
import { openPipe } from '../named-pipe/connect.js';
import { isWindows } from '../platform.js';
import { connectAbstract } from './unix/abstract.js';

export type { RetryOptions };

/** Options of {@link connect}: `wait` retries while there is no listener (or its backlog is full). */
export interface ConnectOptions extends RetryOptions {
  /** Keep our writable side open after the peer ends its side (as net's `allowHalfOpen`). */
  allowHalfOpen?: boolean;
}

/** Errors that mean "no listener (yet)": `wait` retries them. */
const NOT_YET = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN', 'EBUSY']);

/**
 * Windows, without `wait`: how long every instance of a pipe may stay busy before connect fails
 * with EAGAIN. A live server makes a new instance as it accepts, within milliseconds; one that has
 * stopped listening but still has connections open keeps its name busy for as long as they last.
 */
const BUSY_LIMIT_MS = 2000;

function attempt(name: LocalSocketName, allowHalfOpen: boolean, wait: boolean, cancel: AbortSignal | undefined): Promise<LocalSocket> {
  if (isWindows) return attemptPipe(name, allowHalfOpen, wait, cancel);
  const direct = connectAbstract(name, allowHalfOpen);
  if (direct) {
    setSocketName(direct, name);
    return Promise.resolve(direct);
  }
  return new Promise((resolve, reject) => {
    const socket = new LocalSocket({ allowHalfOpen });
    const settle = (error: unknown) => {
      cancel?.removeEventListener('abort', onAbort);
      socket.off('error', settle);
      socket.off('connect', onConnect);
      if (error === undefined) return resolve(socket);
      socket.destroy();
      reject(error);
    };
    const onAbort = () => settle(cancel!.reason);
    const onConnect = () => {
      setSocketName(socket, name);
      settle(undefined);
    };
    socket.once('connect', onConnect);
    socket.once('error', settle);
    cancel?.addEventListener('abort', onAbort, { once: true });
    socket.connect({ path: name.address });
  });
}

/** Windows: our own client end of the pipe, so the server's process id is known. */
async function attemptPipe(name: LocalSocketName, allowHalfOpen: boolean, wait: boolean, cancel: AbortSignal | undefined): Promise<LocalSocket> {
  const native = requireNative('Connecting to a local socket').namedPipe;
  const c = native.constants;
  const pipe = await openPipe(native, name.address, c.GENERIC_READ | c.GENERIC_WRITE, false, cancel, wait ? Infinity : BUSY_LIMIT_MS);
  return socketOverPipe(pipe, name, 'server', allowHalfOpen);
}

/**
 * Connects to the listener at `name` (a path string, or a name from fsName()/nsName()).
 * Fails with ENOENT or ECONNREFUSED when nothing listens there (unless `wait`), ETIMEDOUT after
 * `timeout`, ABORT_ERR when `signal` aborts.
 */
export async function connect(name: string | LocalSocketName, options: ConnectOptions = {}): Promise<LocalSocket> {
  const resolved = toName(name);
  const allowHalfOpen = options?.allowHalfOpen ?? false;
  return connectWithRetry(resolved, options, (cancel) => attempt(resolved, allowHalfOpen, options?.wait === true, cancel));
}

/** The policy of every socket connect of the package: "no listener (yet)" is worth waiting for. */
export function connectWithRetry<T>(name: LocalSocketName, options: RetryOptions, attempt: Attempt<T>): Promise<T> {
  return retry(options, { notYet: NOT_YET, timedOut: (timeout) => timeoutError(name, timeout), failed: (error) => connectError(error, name) }, attempt);
}

function timeoutError(name: LocalSocketName, timeout: number): InterprocessError {
  return new InterprocessError('ETIMEDOUT', `Connecting to ${name} timed out after ${timeout} ms`, { syscall: 'connect', address: name.address });
}

/**
 * Windows: the code Unix gives for the same situation, so that a connect fails alike everywhere:
 * libuv calls ERROR_ACCESS_DENIED EPERM, and a socket that may not be reached is EACCES; every
 * instance staying busy is what a full backlog is (EAGAIN). Both are "not yet" codes alike.
 */
function unixCode(code: string | undefined): string | undefined {
  if (!isWindows) return code;
  return code === 'EPERM' ? 'EACCES' : code === 'EBUSY' ? 'EAGAIN' : code;
}

function connectError(error: unknown, name: LocalSocketName): InterprocessError {
  const code = unixCode((error as NodeJS.ErrnoException).code);
  const hint =
    code === 'ENOENT' || code === 'ECONNREFUSED'
      ? 'Nothing is listening there: start the server first, or connect with { wait: true } to wait for it.'
      : code === 'EACCES'
        ? isWindows
          ? 'This user may not connect to it: the pipe\'s security descriptor denies it.'
          : 'This user may not connect to it: check the socket file\'s mode and its directory\'s permissions.'
        : code === 'EAGAIN'
          ? isWindows
            ? `Every instance of the pipe stayed busy for ${BUSY_LIMIT_MS} ms: the server accepts no one now (or has stopped listening with connections still open). Connect with { wait: true } to wait for it.`
            : 'The server\'s backlog is full: connect with { wait: true } to retry.'
          : undefined;
  return fromSystemError(error, `Cannot connect to ${name}`, hint, { address: name.address, code });
}
