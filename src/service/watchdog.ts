/**
 * The service manager's watchdog (sd_watchdog_enabled(3)): with `WatchdogSec=`, the manager sets
 * WATCHDOG_USEC (and WATCHDOG_PID) and restarts the service when no `WATCHDOG=1` arrives within
 * that time. {@link startWatchdog} pings at half of it, as systemd recommends.
 */
import { EventEmitter } from 'node:events';
import { InterprocessError, invalidType } from '../errors.js';
import { sdNotify } from './notify.js';

/**
 * How often the watchdog must be pinged, in milliseconds (WATCHDOG_USEC / 1000); null when no
 * watchdog watches this process (WATCHDOG_USEC unset, or WATCHDOG_PID another process's id).
 * Fails with EINVAL for malformed variables.
 */
export function watchdogTimeout(): number | null {
  const usec = process.env.WATCHDOG_USEC;
  if (usec === undefined) return null;
  if (!/^[1-9][0-9]{0,18}$/.test(usec)) throw invalid(`WATCHDOG_USEC is not a positive number of microseconds: '${usec}'`);
  const pid = process.env.WATCHDOG_PID;
  if (pid !== undefined) {
    if (!/^[1-9][0-9]{0,9}$/.test(pid)) throw invalid(`WATCHDOG_PID is not a process id: '${pid}'`);
    if (Number(pid) !== process.pid) return null; // the watchdog watches another process
  }
  return Number(usec) / 1000;
}

function invalid(message: string): InterprocessError {
  return new InterprocessError('EINVAL', `${message}. The service manager sets it; remove it if it was not meant for this process.`);
}

/** The events of a {@link ServiceWatchdog}. */
export interface ServiceWatchdogEvents {
  /** A ping was sent (true) or NOTIFY_SOCKET is unset (false). */
  ping: [sent: boolean];
  /** A ping failed (the next one is tried at the next interval). Without a listener it is a process warning. */
  error: [error: InterprocessError];
}

/** Options of {@link startWatchdog}. */
export interface StartWatchdogOptions {
  /** Stops the pings when aborted (as close()). */
  signal?: AbortSignal;
}

// setInterval's limit: a longer delay fires at once.
const MAX_TIMER = 0x7fffffff;

/**
 * Pings the service manager's watchdog (`WATCHDOG=1`) at half of its timeout, from
 * {@link startWatchdog}. With no watchdog for this process it does nothing (`interval` is null).
 * It does not hold the process open (call ref() for that): a service with nothing left to do
 * exits rather than being kept alive by its own heartbeat. Events ({@link ServiceWatchdogEvents}):
 * `'ping'`, `'error'`.
 */
export class ServiceWatchdog extends EventEmitter<ServiceWatchdogEvents> implements AsyncDisposable {
  /** Milliseconds between pings (half of WATCHDOG_USEC), or null when no watchdog watches this process. */
  readonly interval: number | null;
  #timer: NodeJS.Timeout | null = null;
  #inFlight: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | null = null;

  /** @internal Use {@link startWatchdog}. */
  constructor(timeout: number | null, signal: AbortSignal | undefined) {
    super();
    this.interval = timeout === null ? null : Math.min(MAX_TIMER, Math.max(1, Math.floor(timeout / 2)));
    if (this.interval !== null) {
      this.#timer = setInterval(() => void this.#tick(), this.interval);
      this.#timer.unref();
    }
    if (signal) {
      if (signal.aborted) void this.close();
      else signal.addEventListener('abort', () => void this.close(), { once: true });
    }
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closing !== null;
  }

  async #tick(): Promise<void> {
    try {
      await this.ping();
    } catch (error) {
      if (this.listenerCount('error') > 0) this.emit('error', error as InterprocessError);
      else process.emitWarning(error as Error);
    }
  }

  /**
   * Sends `WATCHDOG=1` now (as the timer does). Resolves true once sent, false when NOTIFY_SOCKET
   * is unset; fails as sdNotify() does, and with ERR_INTERPROCESS_CLOSED after close().
   */
  ping(): Promise<boolean> {
    if (this.#closing !== null) return Promise.reject(new InterprocessError('ERR_INTERPROCESS_CLOSED', 'This watchdog is closed: start another with startWatchdog().'));
    const sent = sdNotify('WATCHDOG=1');
    this.#inFlight = sent.then((ok) => void this.emit('ping', ok), () => {});
    return sent;
  }

  /** Stops pinging; resolves once a ping under way has gone. A second call returns the same promise. */
  close(): Promise<void> {
    if (this.#closing === null) {
      if (this.#timer !== null) clearInterval(this.#timer);
      this.#timer = null;
      this.#closing = this.#inFlight.then(() => {});
    }
    return this.#closing;
  }

  /** The timer holds the process open. */
  ref(): this {
    this.#timer?.ref();
    return this;
  }

  /** The timer no longer holds the process open (the default). */
  unref(): this {
    this.#timer?.unref();
    return this;
  }

  /** `await using dog = startWatchdog()` stops it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts pinging the service manager's watchdog at half of WATCHDOG_USEC (when WATCHDOG_PID, if
 * set, is this process). Where no watchdog watches this process the returned object does nothing
 * (its `interval` is null), so a service calls it unconditionally. Ping failures go to its
 * `'error'` event (a process warning without a listener); pinging goes on.
 */
export function startWatchdog(options: StartWatchdogOptions = {}): ServiceWatchdog {
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', options.signal);
  return new ServiceWatchdog(watchdogTimeout(), options.signal);
}
