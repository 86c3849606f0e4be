/**
 * Single-instance applications: the first process of an id becomes the primary; every later one
 * hands its argv, cwd, chosen environment variables and data to it, gets its answer, and is told
 * it is secondary.
 *
 * Who wins is decided by the OS, atomically, by listen() on the id's name (name.ts): the bind of
 * a Linux abstract name; elsewhere the flock'd lock file beside the socket file
 * (../unix/socket-file.ts), which the kernel releases when its holder dies, so a crashed
 * primary's stale file is taken over by exactly one starter; on Windows the pipe's first instance
 * (FILE_FLAG_FIRST_PIPE_INSTANCE). A starter connects first: if a primary answers, it hands over;
 * if nothing listens, it tries to listen; if that fails with EADDRINUSE (another starter won
 * meanwhile, and is not accepting yet), it goes round again, until `timeout`. A primary that is
 * alive but slow is never replaced: its name stays held, and the secondary fails with ETIMEDOUT.
 *
 * On the wire (a Channel with the json codec, one message each way): the secondary sends
 * `{ v: 1, argv, cwd, env, data }`, the primary answers `{ reply }` or `{ error: { code, message } }`
 * and closes. The secondary first checks that the primary is its own user (or root) from the
 * kernel's peer credentials, so nothing goes to a process of another user that squats the name;
 * the primary's listener lets in only this user (allow 'same-user').
 *
 * This file holds the race; primary.ts the primary's side, secondary.ts the secondary's, wire.ts
 * what passes between them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InterprocessError, abortError, invalidArgument, invalidType, outOfRange } from '../errors.js';
import { listen } from '../local-socket/listener.js';
import type { LocalSocketName } from '../local-socket/name.js';
import { checkOptionsObject, checkSignal } from '../options.js';
import { checkId, instanceName } from './name.js';
import { PrimaryInstance } from './primary.js';
import { type SecondaryInstance, handOver } from './secondary.js';
import { PROTOCOL, type Wire } from './wire.js';

/** Default `maxMessageSize`: 1 MiB for an instance's argv, cwd, environment and data. */
const DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024;
/** Default `timeout`: 10 s. */
const DEFAULT_TIMEOUT = 10_000;

/** Options of {@link singleInstance}. */
export interface SingleInstanceOptions<D = unknown> {
  /** The arguments handed to the primary (default `process.argv.slice(2)`, what util.parseArgs reads). */
  argv?: readonly string[];
  /** The working directory handed to the primary (default `process.cwd()`). */
  cwd?: string;
  /** Names of the environment variables handed to the primary (default none); unset ones are left out. */
  env?: readonly string[];
  /** Any JSON value to hand to the primary besides (Electron's `additionalData`). */
  data?: D;
  /**
   * Milliseconds one side waits for the other (default 10000; `Infinity` waits): a secondary, for
   * the primary's answer (then ETIMEDOUT: the primary is alive but does not answer; it is never
   * replaced while alive); the primary, for a connection's instance, and then for it to take
   * the answer (a connection slower at either is closed).
   */
  timeout?: number;
  /**
   * The largest message either side takes, in bytes (default 1 MiB): an instance (argv, cwd,
   * environment and data as JSON) or a reply. A larger one is refused from its length alone.
   */
  maxMessageSize?: number;
  /**
   * A secondary: stops waiting (ABORT_ERR). The primary: closes it when aborted.
   */
  signal?: AbortSignal;
}


interface Checked<D> {
  message: Wire<D>;
  timeout: number;
  maxMessageSize: number;
  signal: AbortSignal | undefined;
}

function checkOptions<D>(options: SingleInstanceOptions<D>): Checked<D> {
  checkOptionsObject(options);
  const { argv = process.argv.slice(2), cwd = process.cwd(), env = [], timeout = DEFAULT_TIMEOUT, maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE, signal } = options;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw invalidType('options.argv', 'an array of strings', argv);
  if (typeof cwd !== 'string') throw invalidType('options.cwd', 'a string', cwd);
  if (!Array.isArray(env) || !env.every((a) => typeof a === 'string')) throw invalidType('options.env', 'an array of environment variable names', env);
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) throw outOfRange('options.timeout', 'a number of milliseconds from 0 (Infinity waits)', timeout);
  if (!Number.isInteger(maxMessageSize) || maxMessageSize < 64 || maxMessageSize > 0x7fffffff) throw outOfRange('options.maxMessageSize', 'an integer from 64 to 2147483647', maxMessageSize);
  checkSignal(signal);
  const chosen: Record<string, string> = {};
  for (const key of env) {
    const value = process.env[key];
    if (value !== undefined) chosen[key] = value;
  }
  const message: Wire<D> = { v: PROTOCOL, argv: [...argv], cwd, env: chosen };
  if (options.data !== undefined) message.data = options.data;
  let text: string;
  try {
    text = JSON.stringify(message);
  } catch (error) {
    throw invalidArgument('options.data', `must be a JSON value (no BigInt, no cycles): ${(error as Error).message}`);
  }
  const size = Buffer.byteLength(text);
  if (size > maxMessageSize) throw invalidArgument('options', `make an instance of ${size} bytes (argv, cwd, env and data as JSON), more than maxMessageSize (${maxMessageSize}): send less, or raise maxMessageSize on every process`);
  return { message, timeout, maxMessageSize, signal };
}

/**
 * Makes this process the primary of `id` (letters, digits, '.', '_', '-'), or hands its instance
 * (argv, cwd, the chosen environment variables, data) to the primary that runs and resolves with
 * its answer. The name is this user's alone (see docs/single-instance.md); of processes started
 * at once exactly one becomes the primary, and a primary that died is replaced by the next
 * process to start. Fails with ETIMEDOUT when a primary runs but does not answer within
 * `timeout`, EACCES when another user holds the name, ABORT_ERR when `signal` aborts, or the code
 * of the primary's failed reply.
 */
export async function singleInstance<D = unknown, R = unknown>(id: string, options: SingleInstanceOptions<D> = {}): Promise<PrimaryInstance<D, R> | SecondaryInstance<R>> {
  checkId(id);
  return singleInstanceOn<D, R>(id, instanceName(id), options);
}

/** singleInstance() on a name of the caller's choice (the tests use socket-file names on Linux). */
export async function singleInstanceOn<D = unknown, R = unknown>(id: string, name: LocalSocketName, options: SingleInstanceOptions<D> = {}): Promise<PrimaryInstance<D, R> | SecondaryInstance<R>> {
  const { message, timeout, maxMessageSize, signal } = checkOptions(options);
  if (signal?.aborted) throw abortError(signal);
  const deadline = Date.now() + timeout;
  let lastFailure = 'nothing answered';
  let delay = 2;
  for (;;) {
    if (signal?.aborted) throw abortError(signal);
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new InterprocessError('ETIMEDOUT', `No primary instance of '${id}' answered within ${timeout} ms on ${name} (${lastFailure}). A primary that is alive but busy is never replaced: wait longer (options.timeout), or stop it.`, { address: name.address });
    }
    const handed = await handOver<R>(id, name, message, maxMessageSize, Math.min(left, 2 ** 31 - 1), signal);
    if (handed.kind === 'answer') return handed.answer;
    lastFailure = handed.why;
    if (handed.kind === 'absent') {
      try {
        const listener = await listen(name);
        const primary = new PrimaryInstance<D, R>(id, listener, timeout, maxMessageSize);
        if (signal?.aborted) {
          await primary.close();
          throw abortError(signal);
        }
        signal?.addEventListener('abort', () => void primary.close(), { once: true });
        return primary;
      } catch (error) {
        // Another process won the name meanwhile and is not accepting yet: go round again.
        if ((error as InterprocessError).code !== 'EADDRINUSE') throw error;
        lastFailure = 'the name is held, but its holder accepts no connection yet';
      }
    }
    try {
      await sleep(delay, undefined, { signal });
    } catch {
      throw abortError(signal!);
    }
    delay = Math.min(delay * 2, 50);
  }
}

