// The addon is context-aware: it loads in worker threads, local sockets work there, and
// terminating a worker with live sockets and watchers tears everything down without a crash.
import assert from 'node:assert/strict';
import { on } from 'node:events';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { connect, listen, nativeStatus } from 'interprocess';
import { readAll, scratchDir } from '../helpers.js';

/** The worker's messages, in order. */
function collect(worker: Worker) {
  const events = on(worker, 'message');
  return { next: async () => ((await events.next()).value as unknown[])[0] as any };
}

test('the addon loads in a worker, local sockets work there, terminate() does not crash', { timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  const { execFileSync } = await import('node:child_process');
  for (let i = 0; i < 3; i++) {
    const socketPath = path.join(dir, `worker-${i}.sock`);
    const fifo = path.join(dir, `fifo-${i}`);
    execFileSync('mkfifo', [fifo]);
    const worker = new Worker(new URL('../fixtures/worker-sockets.js', import.meta.url), { workerData: { socketPath, fifo } });
    const messages = collect(worker);
    await messages.next(); // the worker's own connection: its peer is this process too
    const ready = await messages.next();
    assert.equal(ready.type, 'ready', ready.message);
    assert.deepEqual(ready.status, { loaded: true });
    assert.equal(ready.echoed, 'inside');
    // The main thread talks to the worker's listener too, and sees this process as its peer.
    const conn = await connect(socketPath);
    const peerMessage = await messages.next();
    assert.equal(peerMessage.peer.pid, process.pid);
    conn.end('from main');
    assert.equal(String(await readAll(conn)), 'from main');
    // Terminate with a listener, open connections and a started watcher still alive.
    const exitCode = await worker.terminate();
    assert.equal(exitCode, 1);
  }
  // The main thread is unharmed: the addon and sockets still work here.
  assert.deepEqual(nativeStatus(), { loaded: true });
  await using listener = await listen(path.join(dir, 'after.sock'));
  listener.on('connection', (c) => c.end('still fine'));
  assert.equal(String(await readAll(await connect(path.join(dir, 'after.sock')))), 'still fine');
});
