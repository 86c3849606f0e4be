/**
 * Connecting to a local socket: one attempt, or with `wait`, attempts until a listener appears
 * (retrying ENOENT and ECONNREFUSED, which the Rust crate never does), all within `timeout` and
 * cancellable through `signal`.
 */
import { BUSY_LIMIT_MS, type RetryOptions, connectWithRetry } from '../socket-connect.js';
import { type LocalSocketName, toName } from './name.js';
import { LocalSocket, connectedTo, socketOverPipe } from './stream.js';
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

function attempt(name: LocalSocketName, allowHalfOpen: boolean, wait: boolean, cancel: AbortSignal | undefined): Promise<LocalSocket> {
  if (isWindows) return attemptPipe(name, allowHalfOpen, wait, cancel);
  const direct = connectAbstract(name, allowHalfOpen);
  if (direct) {
    connectedTo(direct, name);
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
      connectedTo(socket, name);
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
