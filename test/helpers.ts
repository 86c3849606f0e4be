/** Shared test helpers: scratch directories, unique names, child processes, descriptor counts. */
import { type ChildProcess, type ForkOptions, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { requireNative } from '#internal/native/addon.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let counter = 0;
const windows = process.platform === 'win32';

/** True when the tests run under Wine (test/wine/run.js), which differs from Windows in places. */
export const wine = windows && process.env.INTERPROCESS_WINE === '1';

/**
 * Skip reasons for tests of what Windows does not have: false elsewhere. Each primitive's test
 * file also checks, on Windows, the ERR_INTERPROCESS_UNSUPPORTED error that replaces it there.
 */
export const notOnWindows = {
  fifo: process.platform === 'win32' && 'Windows has no FIFO files (createFifo and the FIFO openers throw ERR_INTERPROCESS_UNSUPPORTED there)',
  socketFile:
    windows && 'Windows has no socket files: a local socket there is a named pipe, whose name lives in the pipe namespace and vanishes with its last handle (no file mode, no stale file, no lock file)',
} as const;

/** A fresh short directory under the temp dir (socket paths must stay short), removed after the test. */
export function scratchDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipc-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A name no other test (or test run) uses. */
export function uniqueName(prefix = 'ipc-test'): string {
  return `${prefix}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A filesystem name for a test, as a string: a socket file `file` in a fresh scratch directory on
 * Unix; on Windows, where filesystem names are pipe paths, a unique `\\.\pipe\` path.
 */
export function testSocketPath(t: TestContext, file: string): string {
  if (windows) return `\\\\.\\pipe\\${uniqueName(file)}`;
  return path.join(scratchDir(t), file);
}

/** How many descriptors this process has open (Linux); on Windows, how many handles. */
export function openFds(): number {
  if (process.platform === 'win32') return requireNative('counting handles').namedPipe.handleCount();
  return fs.readdirSync('/proc/self/fd').length;
}

/**
 * openFds() once the count has settled (the same over three readings 10 ms apart, at most 1 s):
 * an earlier test's descriptors may still be closing when the next one counts its "before".
 */
export async function settledFds(): Promise<number> {
  let last = openFds();
  for (let same = 0, tries = 0; same < 2 && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    const now = openFds();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

/** A child process running a compiled fixture from out/test/fixtures, with an IPC channel. */
export interface Fixture {
  readonly child: ChildProcess;
  /** The next message of this type from the child (messages are `{ type, ... }` objects). */
  next<T = Record<string, unknown>>(type: string): Promise<T>;
  send(message: unknown): void;
  /** Resolves with the exit code (or signal) when the child ends. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts fixture `name` with `args`; the child is killed after the test if it still runs.
 * `options.extraFds` are handed to the child as its descriptors 4, 5, ... (after the IPC
 * channel's 3); the other options go to fork().
 */
/**
 * Set by scripts/sanitize.sh: the addon is built with ASan, whose shadow memory and quarantine
 * inflate RSS and whose checks slow every call. Memory bounds scale by this factor there; the
 * behaviour asserted around them does not change.
 */
export const sanitizerScale = process.env.INTERPROCESS_SANITIZER === '1' ? 4 : 1;

/** Whether every user may run `file`: it and each directory above it have the x bit for others. */
function runnableByEveryone(file: string): boolean {
  try {
    if ((fs.statSync(file).mode & 0o001) === 0) return false;
    for (let dir = path.dirname(file); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      if ((fs.statSync(dir).mode & 0o001) === 0) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * A node binary that another user (a fixture run as nobody) may run: this one, or else the
 * machine's own (CI's Node 22 to 26 live under root's home, which nobody may enter). A peer on
 * another Node version is still a peer.
 */
export function nodeForAnyUser(): string {
  return [process.execPath, '/usr/bin/node', '/usr/local/bin/node'].find(runnableByEveryone) ?? process.execPath;
}

export function spawnFixture(t: TestContext, name: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env, options: ForkOptions & { extraFds?: number[] } = {}): Fixture {
  const { extraFds = [], ...forkOptions } = options;
  const otherUser = forkOptions.uid !== undefined && forkOptions.uid !== process.getuid?.();
  const child = fork(path.join(here, 'fixtures', `${name}.js`), args, {
    execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...extraFds], env, ...(otherUser ? { execPath: nodeForAnyUser() } : {}), ...forkOptions,
  });
  const inbox: Array<Record<string, unknown>> = [];
  const waiting: Array<{ type: string; resolve: (m: never) => void; reject: (e: Error) => void }> = [];
  // 'close', not 'exit': by then the IPC channel's descriptor is closed too (tests count descriptors).
  const exited = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  child.on('message', (message: Record<string, unknown>) => {
    const i = waiting.findIndex((w) => w.type === message.type);
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(message as never);
    else inbox.push(message);
  });
  void exited.then(({ code, signal }) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`fixture ${name} exited (code ${code}, signal ${signal}) before sending '${w.type}'`));
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    exited,
    send: (message) => child.send(message as never),
    next<T>(type: string): Promise<T> {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as T);
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`fixture ${name} already exited`));
      return new Promise<T>((resolve, reject) => waiting.push({ type, resolve: resolve as (m: never) => void, reject }));
    },
  };
}

/**
 * Resolves with a child's exit code (or signal name) once it has exited, including when it
 * already has: `once(child, 'exit')` attached late would wait forever.
 */
export function exitOf(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}

/**
 * Starts a server on `socketPath` in a child and SIGKILLs it, leaving its socket file behind (on
 * Windows nothing stays behind: a pipe's name goes with its last handle).
 */
export async function leaveStaleSocket(t: TestContext, socketPath: string): Promise<void> {
  const server = spawnFixture(t, 'stale-server', [socketPath]);
  await server.next('listening');
  server.child.kill('SIGKILL');
  await server.exited;
}

/** Deterministic pseudo-random bytes (so both processes can check them without sending a copy). */
export function patternBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Sends `data`, reads `length` bytes of reply, then ends the socket: a request and its reply
 * without half-close, which Windows pipes do not have (docs/local-sockets.md).
 */
export function request(socket: import('node:net').Socket, data: string | Buffer, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < length) return;
      socket.off('data', onData).off('end', onEnd).off('error', reject);
      socket.end();
      resolve(Buffer.concat(chunks));
    };
    const onEnd = () => reject(new Error(`the reply ended after ${received} of ${length} bytes`));
    socket.on('data', onData).once('end', onEnd).once('error', reject);
    socket.write(data);
  });
}

/**
 * Reads a stream to its end, leaving it open for writing (a for-await loop would destroy a
 * socket when it ends, which would cut off a half-closed reply).
 */
export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** Runs a Python program (python3 is a test dependency); the child dies after the test. */
export function python(t: TestContext, program: string, args: string[]): ChildProcess & { output: Promise<string> } {
  const child = spawn('python3', ['-c', program, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill());
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  // 'close', not 'exit': stdout may still hold output at 'exit', and its descriptor is still open.
  const output = once(child, 'close').then(([code]) => {
    if (code !== 0) throw new Error(`python exited with ${code}: ${out}`);
    return out;
  });
  return Object.assign(child, { output });
}
