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
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { AcceptQueue } from '../accept-queue.js';
import type { PeerCredentials } from '../credentials.js';
import { InterprocessError, abortError, invalidArgument, invalidType, outOfRange } from '../errors.js';
import type { ListenerIteratorOptions } from '../listener.js';
import { connect } from '../local-socket/connect.js';
import { type LocalSocketListener, listen } from '../local-socket/listener.js';
import type { LocalSocketName } from '../local-socket/name.js';
import type { LocalSocket } from '../local-socket/stream.js';
import { Channel } from '../channel/channel.js';
import { checkOptionsObject, checkSignal } from '../options.js';
import { isWindows } from '../platform.js';
import { checkId, instanceName } from './name.js';

/** Default `maxMessageSize`: 1 MiB for an instance's argv, cwd, environment and data. */
const DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024;
/** Default `timeout`: 10 s. */
const DEFAULT_TIMEOUT = 10_000;
const PROTOCOL = 1;

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

/** What a secondary gets: the primary's answer to its instance. */
export interface SecondaryInstance<R = unknown> {
  /** False: another process is the primary. */
  readonly primary: false;
  /** What the primary's handler answered (`undefined` when it answered nothing). */
  readonly reply: R | undefined;
  /** The primary's process id, from the kernel (null where the OS does not say). */
  readonly pid: number | null;
}

/** The events of a {@link PrimaryInstance}, with their arguments. */
export interface PrimaryInstanceEvents<D = unknown, R = unknown> {
  /**
   * Another process started: its instance. Answered with `undefined` when the listeners return,
   * unless one of them called `instance.reply()`. With no listener, instances wait for async
   * iteration instead.
   */
  'second-instance': [instance: SecondInstance<D, R>];
  /** A peer the listener refused (another user): its credentials, or null if unreadable. */
  refused: [credentials: PeerCredentials | null, error?: unknown];
  /**
   * Accepting failed: to a loop waiting for the next instance if nobody listens for 'error',
   * else this event (as every listener's: with neither, Node's rule throws it).
   */
  error: [error: InterprocessError];
  /** The primary has closed: no process can hand over to it any more. */
  close: [];
}

/** What a second process handed over: its arguments, working directory, environment and data. */
export class SecondInstance<D = unknown, R = unknown> {
  /** Its arguments (`process.argv.slice(2)` unless it passed `argv`). */
  readonly argv: readonly string[];
  /** Its working directory. */
  readonly cwd: string;
  /** The environment variables it chose to send (its `env` option). */
  readonly env: Readonly<Record<string, string>>;
  /** The data it passed (`undefined` if none). */
  readonly data: D | undefined;
  /** Who it is, from the kernel's peer credentials (on Windows: its process id only). */
  readonly credentials: PeerCredentials | null;
  readonly #answer: (message: unknown) => void;
  #replied = false;

  /** @internal Made by the primary. */
  constructor(message: Wire<D>, credentials: PeerCredentials | null, answer: (message: unknown) => void) {
    this.argv = Object.freeze([...message.argv]);
    this.cwd = message.cwd;
    this.env = Object.freeze({ ...message.env });
    this.data = message.data;
    this.credentials = credentials;
    this.#answer = answer;
  }

  /** Its process id (null where the OS does not say). */
  get pid(): number | null {
    return this.credentials?.pid ?? null;
  }

  /** Whether it has been answered (by reply(), or with `undefined` after the listeners or the loop). */
  get replied(): boolean {
    return this.#replied;
  }

  /**
   * Answers it: the secondary's singleInstance() resolves with `reply` (a JSON value, or a
   * Promise of one, sent when it settles; a rejected one, or a value JSON cannot encode, rejects
   * the secondary's call with that error's code). Call it inside the 'second-instance' listener,
   * or before the loop takes the next instance: otherwise it was answered with `undefined`.
   * Throws ERR_INVALID_STATE when already answered.
   */
  reply(reply?: R | Promise<R>): void {
    if (this.#replied) throw new InterprocessError('ERR_INVALID_STATE', 'This instance has already been answered: reply() once, inside the \'second-instance\' listener or before the loop takes the next instance.');
    this.#replied = true;
    Promise.resolve(reply).then(
      (value) => this.#answer({ reply: value }),
      (error: unknown) => this.#answer({ error: errorMessage(error) }),
    );
  }
}

/** @internal The instance as sent. */
interface Wire<D> {
  v: number;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  data?: D;
}

/** Destroys `channel` with ETIMEDOUT unless it closes within `timeout` (none when Infinity). */
function cutOff(channel: Channel, timeout: number, why: string): NodeJS.Timeout | undefined {
  if (!Number.isFinite(timeout)) return undefined;
  const timer = setTimeout(() => channel.destroy(new InterprocessError('ETIMEDOUT', why)), timeout).unref();
  channel.once('close', () => clearTimeout(timer));
  return timer;
}

function errorMessage(error: unknown): { code: string; message: string } {
  const e = error as { code?: unknown; message?: unknown };
  return { code: typeof e?.code === 'string' ? e.code : 'ERR_INTERPROCESS_REMOTE', message: typeof e?.message === 'string' ? e.message : String(error) };
}

/** Whether `message` is an instance of the protocol's shape. */
function isWire(message: unknown): message is Wire<unknown> {
  if (message === null || typeof message !== 'object') return false;
  const m = message as Record<string, unknown>;
  if (m.v !== PROTOCOL || typeof m.cwd !== 'string' || !Array.isArray(m.argv) || !m.argv.every((a) => typeof a === 'string')) return false;
  if (m.env === null || typeof m.env !== 'object' || Array.isArray(m.env)) return false;
  return Object.values(m.env as object).every((value) => typeof value === 'string');
}

/**
 * This process is the primary: other processes started with the same id hand their instances to
 * it. Events (see {@link PrimaryInstanceEvents}): 'second-instance', 'refused', 'error', 'close'.
 * Async-iterable over the instances when nobody listens for 'second-instance'.
 */
export class PrimaryInstance<D = unknown, R = unknown> extends EventEmitter<PrimaryInstanceEvents<D, R>> implements AsyncIterable<SecondInstance<D, R>>, AsyncDisposable {
  /** True: this process is the primary. */
  readonly primary = true as const;
  /** The application id. */
  readonly id: string;
  /** The local socket listener the instances arrive on. */
  readonly listener: LocalSocketListener;
  readonly #queue: AcceptQueue<SecondInstance<D, R>>;
  /** Connections that have not sent their instance yet. */
  readonly #pending = new Set<Channel>();
  readonly #undelivered = new Map<SecondInstance<D, R>, Channel>();
  #closing: Promise<void> | null = null;

  /** @internal Use singleInstance(). */
  constructor(id: string, listener: LocalSocketListener, timeout: number, maxMessageSize: number) {
    super();
    this.id = id;
    this.listener = listener;
    this.#queue = new AcceptQueue<SecondInstance<D, R>>({
      emitConnection: (instance) => {
        if (this.listenerCount('second-instance') === 0) return false;
        this.#undelivered.delete(instance);
        try {
          this.emit('second-instance', instance);
        } finally {
          if (!instance.replied) instance.reply();
        }
        return true;
      },
      hasErrorListeners: () => this.listenerCount('error') > 0,
      emitError: (error) => void this.emit('error', error),
    }, (instance) => {
      // Closed before anyone took it: the secondary sees the connection end and tries again
      // (and becomes the primary if none is left).
      this.#undelivered.get(instance)?.destroy();
      this.#undelivered.delete(instance);
    });
    listener.on('error', (error) => this.#queue.fail(error));
    listener.on('refused', (credentials, ...error) => {
      if (error.length === 0) this.emit('refused', credentials);
      else this.emit('refused', credentials, error[0]);
    });
    listener.on('connection', (socket) => this.#accept(socket, timeout, maxMessageSize));
  }

  #accept(socket: LocalSocket, timeout: number, maxMessageSize: number): void {
    socket.on('error', () => {}); // the channel reports stream errors as its own
    let credentials: PeerCredentials | null = null;
    try {
      credentials = socket.peerCredentials();
    } catch {
      /* not readable here: the listener's rule has already admitted it */
    }
    const channel = new Channel(socket, { maxMessageSize, highWaterMark: 1 });
    channel.on('error', () => {});
    this.#pending.add(channel);
    const timer = cutOff(channel, timeout, `A second instance sent nothing for ${timeout} ms`);
    let got = false;
    channel.once('close', () => this.#pending.delete(channel));
    channel.on('message', (message) => {
      if (got) return channel.destroy(); // one instance per connection
      got = true;
      clearTimeout(timer);
      this.#pending.delete(channel);
      if (!isWire(message)) {
        void channel.send({ error: { code: 'ERR_INTERPROCESS_DECODE', message: 'The primary could not read this instance: it is not { v: 1, argv, cwd, env } (a different version of the package?)' } }).catch(() => {});
        void channel.close().catch(() => {});
        return;
      }
      const instance = new SecondInstance<D, R>(message as Wire<D>, credentials, (answer) => {
        // The answer too has `timeout` to go: a secondary that never reads it is cut off.
        cutOff(channel, timeout, `A second instance did not take its answer within ${timeout} ms`);
        channel.send(answer).then(
          () => void channel.close().catch(() => {}),
          (error: InterprocessError) => {
            // A value JSON cannot encode: say so instead (the channel is still usable).
            if (channel.closed) return;
            void channel.send({ error: errorMessage(error) }).catch(() => {}).finally(() => void channel.close().catch(() => {}));
          },
        );
      });
      this.#undelivered.set(instance, channel);
      channel.once('close', () => this.#undelivered.delete(instance));
      this.#queue.deliver(instance);
    });
  }

  /** True until close() is called. */
  get listening(): boolean {
    return this.#closing === null;
  }

  /**
   * Stops being the primary: the listener closes (the next process to start becomes the primary),
   * connections that have not sent their instance are closed, and instances not yet taken are
   * closed unanswered (their processes try again, and one of them becomes the primary). Instances
   * taken keep their connection until answered. Resolves (and emits 'close') once no one can hand
   * over to this process any more; a second call returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#queue.end();
      for (const channel of this.#pending) channel.destroy();
      this.#pending.clear();
      await this.listener.close();
      this.emit('close');
    })();
    return this.#closing;
  }

  /** Lets the process exit while it is the primary (the listener's unref()). */
  unref(): this {
    this.listener.unref();
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.listener.ref();
    return this;
  }

  /**
   * The instances, as `for await (const instance of primary)` gives them, with options:
   * `{ closeOnReturn: false }` leaves the primary open when the loop is left early. An instance
   * the loop took and did not reply() to is answered with `undefined` when the loop asks for the
   * next one or ends.
   */
  iterator(options: ListenerIteratorOptions = {}): AsyncIterableIterator<SecondInstance<D, R>> {
    const closeOnReturn = options?.closeOnReturn ?? true;
    const inner = this.#queue.iterator(closeOnReturn ? () => this.close() : null);
    let last: SecondInstance<D, R> | undefined;
    const settleLast = () => {
      if (last !== undefined && !last.replied) last.reply();
      last = undefined;
    };
    const iterator: AsyncIterableIterator<SecondInstance<D, R>> = {
      next: async () => {
        settleLast();
        const result = await inner.next();
        if (!result.done) {
          last = result.value;
          this.#undelivered.delete(result.value);
        }
        return result;
      },
      return: async () => {
        settleLast();
        return inner.return!();
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** The instances that arrive. Leaving the loop early closes the primary (see iterator()). */
  [Symbol.asyncIterator](): AsyncIterableIterator<SecondInstance<D, R>> {
    return this.iterator();
  }

  /** `await using app = ...` (when primary) closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
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

type Handed<R> = { kind: 'answer'; answer: SecondaryInstance<R> } | { kind: 'absent' | 'again'; why: string };

/** One attempt at handing the instance over: the answer, nobody there, or try again. */
async function handOver<R>(id: string, name: LocalSocketName, message: unknown, maxMessageSize: number, left: number, signal: AbortSignal | undefined): Promise<Handed<R>> {
  let socket: LocalSocket;
  try {
    socket = await connect(name, { signal, timeout: left });
  } catch (error) {
    const code = (error as InterprocessError).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') return { kind: 'absent', why: 'nothing listens' };
    if (code === 'EAGAIN') return { kind: 'again', why: 'the primary\'s backlog is full' };
    if (code === 'ETIMEDOUT') return { kind: 'again', why: 'connecting timed out' };
    throw error;
  }
  socket.on('error', () => {});
  const credentials = primaryCredentials(socket, name, id);
  const channel = new Channel(socket, { maxMessageSize, highWaterMark: 1 });
  channel.on('error', () => {});
  const answer = new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => reject(new InterprocessError('ETIMEDOUT', `The primary instance of '${id}' (pid ${credentials?.pid ?? 'unknown'}) took the connection but did not answer within the timeout: it is alive but busy, and is not replaced while alive. Wait longer (options.timeout), or stop it.`, { address: name.address })), left);
    const onAbort = () => reject(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    channel.once('message', (reply) => {
      done();
      resolve(reply);
    });
    channel.once('close', () => {
      done();
      resolve(undefined); // ended with no answer: the primary closed or died
    });
  });
  try {
    await channel.send(message);
  } catch {
    /* the primary went away: the answer says so */
  }
  let reply: unknown;
  try {
    reply = await answer;
  } finally {
    channel.destroy();
  }
  if (reply === undefined) return { kind: 'again', why: 'the primary closed the connection without answering (it is closing, refuses this user, or refused an instance larger than its maxMessageSize)' };
  if (reply === null || typeof reply !== 'object') {
    throw new InterprocessError('ERR_INTERPROCESS_DECODE', `The primary instance of '${id}' answered with something that is not { reply } or { error } (a different version of the package?)`);
  }
  const r = reply as { reply?: R; error?: { code?: unknown; message?: unknown } };
  if (r.error !== undefined) {
    const code = typeof r.error?.code === 'string' ? r.error.code : 'ERR_INTERPROCESS_REMOTE';
    throw new InterprocessError(code, `The primary instance of '${id}' answered with an error: ${String(r.error?.message)}`);
  }
  return { kind: 'answer', answer: Object.freeze({ primary: false, reply: r.reply, pid: credentials?.pid ?? null }) };
}

/**
 * The primary's credentials; throws EACCES when it is another user than ours or root (it has
 * squatted the name: nothing is sent to it). On Windows, the pipe tells only its process id.
 */
function primaryCredentials(socket: LocalSocket, name: LocalSocketName, id: string): PeerCredentials | null {
  let credentials: PeerCredentials;
  try {
    credentials = socket.peerCredentials();
  } catch (error) {
    // A private directory's socket file (macOS, the BSDs) is reachable by this user alone.
    if (name.privateDirectory !== null || isWindows) return null;
    socket.destroy();
    throw error;
  }
  const uid = process.geteuid?.();
  if (!isWindows && credentials.uid !== null && uid !== undefined && credentials.uid !== uid && credentials.uid !== 0) {
    socket.destroy();
    throw new InterprocessError('EACCES', `The name of '${id}' (${name}) is held by uid ${credentials.uid} (pid ${credentials.pid ?? 'unknown'}), another user: nothing was sent to it. Another user's process has taken this user's name; stop it, or use another id.`, { address: name.address });
  }
  return credentials;
}
