// The secondary's side: handing an instance to the primary and reading its answer (see single-instance.ts).
import type { PeerCredentials } from '../credentials.js';
import { InterprocessError, abortError } from '../errors.js';
import { connect } from '../local-socket/connect.js';
import type { LocalSocketName } from '../local-socket/name.js';
import type { LocalSocket } from '../local-socket/stream.js';
import { Channel } from '../channel/channel.js';
import { isWindows } from '../platform.js';

/** What a secondary gets: the primary's answer to its instance. */
export interface SecondaryInstance<R = unknown> {
  /** False: another process is the primary. */
  readonly primary: false;
  /** What the primary's handler answered (`undefined` when it answered nothing). */
  readonly reply: R | undefined;
  /** The primary's process id, from the kernel (null where the OS does not say). */
  readonly pid: number | null;
}

/** What one attempt at handing over came to. */
export type Handed<R> = { kind: 'answer'; answer: SecondaryInstance<R> } | { kind: 'absent' | 'again'; why: string };

/** One attempt at handing the instance over: the answer, nobody there, or try again. */
export async function handOver<R>(id: string, name: LocalSocketName, message: unknown, maxMessageSize: number, left: number, signal: AbortSignal | undefined): Promise<Handed<R>> {
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