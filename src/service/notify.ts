/**
 * sd_notify(3): telling the service manager about this service's state (READY=1, STATUS=...,
 * RELOADING=1, STOPPING=1, WATCHDOG=1, FDSTORE=1 with descriptors) in one datagram to the Unix
 * socket named by NOTIFY_SOCKET (a path, or '@name' for an abstract name). The manager knows the
 * sender by the kernel's credentials of the datagram, so it goes from this process itself. When
 * NOTIFY_SOCKET is unset (not started by a manager that listens) every call is a no-op that
 * resolves false, so a service calls them unconditionally.
 */
import { InterprocessError, abortError, fromSystemError, invalidArgument, invalidType, outOfRange } from '../errors.js';
import { isWindows } from '../platform.js';
import { nameFromAddress } from '../unix-socket/address.js';
import type { Sendable } from '../unix-socket/descriptors.js';
import { bindDatagram } from '../unix-socket/open.js';

/** One notification: a string of `KEY=value` lines, or an object whose entries become them. */
export type SdNotifyState = string | Readonly<Record<string, string | number>>;

/** Options of {@link sdNotify}. */
export interface SdNotifyOptions {
  /** Descriptors sent with the message (SCM_RIGHTS): for `FDSTORE=1` (see {@link storeFds}). */
  fds?: readonly Sendable[];
  /** Remove NOTIFY_SOCKET from the environment after sending, as sd_notify(1, ...) does (default false). */
  unsetEnvironment?: boolean;
  /** Gives up a send still waiting for room in the manager's queue: ABORT_ERR. */
  signal?: AbortSignal;
}

/** Options of {@link notifyReady}, {@link notifyReloading} and {@link notifyStopping}. */
export interface NotifyOptions {
  /** A `STATUS=` line sent with it: one line of text the manager shows (`systemctl status`). */
  status?: string;
  /** Gives up a send still waiting for room in the manager's queue: ABORT_ERR. */
  signal?: AbortSignal;
}

/** Options of {@link storeFds}. */
export interface StoreFdsOptions {
  /**
   * The name the descriptors are stored under (`FDNAME=`), given back in LISTEN_FDNAMES when the
   * service starts again: at most 255 printable ASCII characters, no ':'. Default: systemd's
   * 'stored'.
   */
  name?: string;
  /** Gives up a send still waiting for room in the manager's queue: ABORT_ERR. */
  signal?: AbortSignal;
}

// systemd reads a notification into a buffer of PIPE_BUF bytes and ignores a longer one.
const MAX_MESSAGE = 4096;
// How long a notification waits for room in the manager's queue: a manager that reads nothing
// for this long is stuck, and a wait without end would pile up a socket per call (the watchdog's).
const MAX_WAIT = 5000;
const KEY = /^[A-Za-z0-9_]+$/;

function stateText(state: unknown): string {
  let text: string;
  if (typeof state === 'string') {
    text = state;
  } else if (state !== null && typeof state === 'object' && !Array.isArray(state)) {
    const lines: string[] = [];
    for (const [key, value] of Object.entries(state)) {
      if (!KEY.test(key)) throw invalidArgument('state', `has the key '${key}': a variable name is letters, digits and '_'`);
      if (typeof value !== 'string' && typeof value !== 'number') throw invalidType(`state.${key}`, 'a string or a number', value);
      const line = String(value);
      if (line.includes('\n')) throw invalidArgument(`state.${key}`, 'holds a newline: each variable is one line');
      lines.push(`${key}=${line}`);
    }
    text = lines.join('\n');
  } else {
    throw invalidType('state', "a string of 'KEY=value' lines or an object", state);
  }
  if (text.length === 0) throw invalidArgument('state', "is empty: a notification is at least one 'KEY=value' line");
  return text;
}

/** The sun_path bytes of NOTIFY_SOCKET. */
function notifyAddress(value: string): Buffer {
  if (value.startsWith('@')) return Buffer.concat([Buffer.of(0), Buffer.from(value.slice(1))]);
  if (value.startsWith('/')) return Buffer.from(value);
  if (value.startsWith('vsock:')) {
    throw new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', `NOTIFY_SOCKET is an AF_VSOCK address ('${value}'): interprocess notifies over Unix sockets only. Run the service with a Unix NOTIFY_SOCKET (the default of systemd on the same machine).`);
  }
  throw new InterprocessError('EINVAL', `NOTIFY_SOCKET is neither an absolute path nor an '@' abstract name: '${value}'. The service manager sets it; unset it if it was not meant for this process.`);
}

/**
 * Sends one notification to the service manager (sd_notify(3)): `state` is `'KEY=value'` lines
 * (`'READY=1\nSTATUS=Serving'`) or an object of them (`{ READY: 1, STATUS: 'Serving' }`), with
 * descriptors in `options.fds` if given. Resolves true once the manager's socket has it; false,
 * sending nothing, when NOTIFY_SOCKET is unset (no manager listens; on every platform). Fails with
 * ENOENT or ECONNREFUSED when nothing is bound at NOTIFY_SOCKET, EAGAIN when its queue stays full
 * for 5 s (the manager reads nothing), EINVAL for a malformed one,
 * ERR_OUT_OF_RANGE for a message over 4096 bytes (systemd would ignore it), and on Windows, when
 * NOTIFY_SOCKET is set, ERR_INTERPROCESS_UNSUPPORTED.
 */
export async function sdNotify(state: SdNotifyState, options: SdNotifyOptions = {}): Promise<boolean> {
  const text = stateText(state);
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const { fds, signal, unsetEnvironment = false } = options;
  if (typeof unsetEnvironment !== 'boolean') throw invalidType('options.unsetEnvironment', 'a boolean', unsetEnvironment);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
  const bytes = Buffer.from(text);
  if (bytes.length > MAX_MESSAGE) throw outOfRange('state', `at most ${MAX_MESSAGE} bytes (the service manager ignores a longer notification)`, `${bytes.length} bytes`);
  const socketName = process.env.NOTIFY_SOCKET;
  if (unsetEnvironment) delete process.env.NOTIFY_SOCKET;
  if (socketName === undefined || socketName === '') return false;
  if (signal?.aborted) throw abortError(signal);
  if (isWindows) {
    throw new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', `sd_notify is not supported on win32, and NOTIFY_SOCKET is set ('${socketName}'): Windows has no service manager listening on a Unix datagram socket. Unset NOTIFY_SOCKET; report a Windows service's state through the Service Control Manager.`);
  }
  const to = nameFromAddress(notifyAddress(socketName))!;
  const socket = await bindDatagram(null);
  // One controller for the caller's abort and our bound (a plain timer, as retry.ts says why).
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => stop.abort(), MAX_WAIT);
  try {
    await socket.send(bytes, { to, ...(fds === undefined ? {} : { fds }), signal: stop.signal });
  } catch (error) {
    if (stop.signal.aborted && !signal?.aborted) {
      throw new InterprocessError('EAGAIN', `Cannot notify the service manager at NOTIFY_SOCKET=${socketName}: its queue stayed full for ${MAX_WAIT} ms (it reads nothing). Is the manager stuck, or is NOTIFY_SOCKET some other process's socket?`, { cause: error, address: to.address });
    }
    if (!(error instanceof InterprocessError) || error.code === 'ABORT_ERR') throw fromSystemError(error, `Cannot notify the service manager at NOTIFY_SOCKET=${socketName}`);
    const { code, errno, syscall, address } = error;
    throw new InterprocessError(code, `Cannot notify the service manager at NOTIFY_SOCKET=${socketName}: ${error.message}`, { cause: error, errno, syscall, address });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    socket.destroy();
  }
  return true;
}

function withStatus(first: Record<string, string>, options: NotifyOptions, what: string): [Record<string, string>, SdNotifyOptions] {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  const state = { ...first };
  if (options.status !== undefined) {
    if (typeof options.status !== 'string') throw invalidType('options.status', 'a string', options.status);
    if (options.status.includes('\n')) throw invalidArgument('options.status', `holds a newline: the status ${what} sends is one line`);
    state.STATUS = options.status;
  }
  return [state, options.signal === undefined ? {} : { signal: options.signal }];
}

/**
 * Tells the service manager that start-up is finished (`READY=1`, and `STATUS=` if given): a
 * `Type=notify` unit counts as started from then on, and units ordered after it start. Resolves
 * false (a no-op) when NOTIFY_SOCKET is unset; see {@link sdNotify}.
 */
export function notifyReady(options: NotifyOptions = {}): Promise<boolean> {
  try {
    return sdNotify(...withStatus({ READY: '1' }, options, 'notifyReady()'));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The monotonic clock (CLOCK_MONOTONIC, as the manager reads it) in microseconds. */
function monotonicMicroseconds(): string {
  return String(process.hrtime.bigint() / 1000n);
}

/**
 * Tells the service manager that the service is reloading its configuration (`RELOADING=1` with
 * `MONOTONIC_USEC=`, which `Type=notify-reload` of systemd 253 and later requires); send
 * {@link notifyReady} when the reload is done. A no-op resolving false when NOTIFY_SOCKET is unset.
 */
export function notifyReloading(options: NotifyOptions = {}): Promise<boolean> {
  try {
    const [state, rest] = withStatus({ RELOADING: '1' }, options, 'notifyReloading()');
    return sdNotify({ ...state, MONOTONIC_USEC: monotonicMicroseconds() }, rest);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Tells the service manager that the service is shutting down (`STOPPING=1`). A no-op resolving false when NOTIFY_SOCKET is unset. */
export function notifyStopping(options: NotifyOptions = {}): Promise<boolean> {
  try {
    return sdNotify(...withStatus({ STOPPING: '1' }, options, 'notifyStopping()'));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Sets the one-line status the manager shows for the service (`STATUS=`). A no-op resolving false when NOTIFY_SOCKET is unset. */
export function notifyStatus(status: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
  try {
    if (typeof status !== 'string') throw invalidType('status', 'a string', status);
    return sdNotify(...withStatus({}, { ...options, status }, 'notifyStatus()'));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Hands descriptors to the service manager to keep across a restart of the service (`FDSTORE=1`,
 * and `FDNAME=` if named): listeners, connections, memfds... They come back at the next start
 * among {@link listenFds} with their name. The unit needs `FileDescriptorStoreMax=`; a manager
 * that does not keep them drops them silently. A no-op resolving false when NOTIFY_SOCKET is unset.
 */
export function storeFds(fds: readonly Sendable[], options: StoreFdsOptions = {}): Promise<boolean> {
  try {
    if (!Array.isArray(fds)) throw invalidType('fds', 'an array of descriptors', fds);
    if (fds.length === 0) throw invalidArgument('fds', 'is empty: pass at least one descriptor to store');
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
    const state: Record<string, string> = { FDSTORE: '1' };
    const { name } = options;
    if (name !== undefined) {
      if (typeof name !== 'string') throw invalidType('options.name', 'a string', name);
      if (!/^[\x21-\x7e]{1,255}$/.test(name) || name.includes(':')) {
        throw invalidArgument('options.name', `must be 1 to 255 printable ASCII characters without ':' or spaces (systemd's rule for descriptor names); got '${name}'`);
      }
      state.FDNAME = name;
    }
    return sdNotify(state, { fds, ...(options.signal === undefined ? {} : { signal: options.signal }) });
  } catch (error) {
    return Promise.reject(error);
  }
}
