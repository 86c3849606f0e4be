// Runs the processes of a measurement (server, then client; or one parent that spawns its own
// peer) and collects the result.
// Every child is tracked so that any exit path of the harness can kill what is left.
import { spawn } from 'node:child_process';
import readline from 'node:readline';

const live = new Set();

/** Kills every child still running (synchronous: safe in an 'exit' handler). */
export function killAllChildren() {
  for (const child of live) child.kill('SIGKILL');
}

const STDERR_KEEP = 4000; // enough of a failing child's stderr to see why

/** A child process that speaks the bench protocol: one JSON object per stdout line. */
class Child {
  constructor(argv, role) {
    this.role = role;
    this.argv = argv;
    this.stderr = '';
    this.messages = [];
    this.waiter = null;
    this.result = null; // { code, signal } or { error } once it is gone
    // stdin stays an open pipe: Node workers exit when it closes (i.e. when we die).
    this.process = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(this.process);
    this.exited = new Promise((resolve) => {
      const done = (result) => {
        if (this.result) return;
        this.result = result;
        live.delete(this.process);
        this.waiter?.reject(this.#gone());
        this.waiter = null;
        resolve(result);
      };
      this.process.once('error', (error) => done({ error }));
      this.process.once('close', (code, signal) => done({ code, signal }));
    });
    this.process.stdin.on('error', () => {}); // EPIPE when the child has exited
    this.process.stderr.setEncoding('utf8');
    this.process.stderr.on('data', (text) => {
      this.stderr = (this.stderr + text).slice(-STDERR_KEEP);
    });
    readline.createInterface({ input: this.process.stdout }).on('line', (line) => this.#onLine(line));
  }

  #onLine(line) {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      this.stderr += `\n(stdout) ${line}`;
      return;
    }
    if (this.waiter) {
      this.waiter.resolve(message);
      this.waiter = null;
    } else {
      this.messages.push(message);
    }
  }

  #gone() {
    const { code, signal, error } = this.result;
    const how = error ? `failed to start (${error.message})` : signal ? `was killed by ${signal}` : `exited with code ${code}`;
    return new Error(`${this.role} ${how} before reporting`);
  }

  /** The next JSON message from the child; rejects if it exits first. */
  next() {
    if (this.messages.length > 0) return Promise.resolve(this.messages.shift());
    if (this.result) return Promise.reject(this.#gone());
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  kill() {
    if (!this.result) this.process.kill('SIGKILL');
  }

  describe() {
    const tail = this.stderr.trim();
    return `${this.role}: ${this.argv.join(' ')}${tail ? `\n  stderr: ${tail.replace(/\n/g, '\n  ')}` : ''}`;
  }
}

/**
 * Runs `body(start, withinDeadline)`, where `start(argv, role)` starts a tracked child, within
 * `timeoutMs`; then every child must exit 0. Returns body's result. Throws (with every command line and its stderr)
 * on failure or timeout; never leaves a child running.
 */
async function supervise(timeoutMs, body) {
  const children = [];
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  const withinDeadline = (promise) => Promise.race([promise, deadline]);
  const start = (argv, role) => {
    const child = new Child(argv, role);
    children.push(child);
    return child;
  };
  try {
    const result = await withinDeadline(body(start, withinDeadline));
    const exits = await withinDeadline(Promise.all(children.map((child) => child.exited)));
    exits.forEach((exit, i) => {
      if (exit.code !== 0) throw new Error(`${children[i].role} exited with ${exit.error?.message ?? exit.signal ?? `code ${exit.code}`}`);
    });
    return result;
  } catch (error) {
    throw new Error(`${error.message}\n${children.map((child) => child.describe()).join('\n')}`);
  } finally {
    clearTimeout(timer);
    for (const child of children) child.kill();
    await Promise.all(children.map((child) => child.exited));
  }
}

/**
 * Starts `server`, waits for its {"ready":true}, starts `client`, and returns the first
 * message of the `reporter` side. Both must then exit 0.
 */
export function runPair({ server, client, reporter, timeoutMs }) {
  return supervise(timeoutMs, async (start, withinDeadline) => {
    const serverChild = start(server, 'server');
    const ready = await withinDeadline(serverChild.next());
    if (!ready?.ready) throw new Error(`server sent ${JSON.stringify(ready)} instead of {"ready":true}`);
    const clientChild = start(client, 'client');
    return (reporter === 'server' ? serverChild : clientChild).next();
  });
}

/**
 * Starts `parent`, a process that makes the channel and spawns its own peer (unnamed pipes can
 * only be handed down), and returns its first message (the peer may print it on the shared
 * stdout). It must then exit 0, which it does once its peer has.
 */
export function runParent({ parent, timeoutMs }) {
  return supervise(timeoutMs, (start) => start(parent, 'parent').next());
}
