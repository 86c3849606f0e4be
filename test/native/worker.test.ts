// The addon is context-aware: it loads in worker threads, local sockets work there, and
// terminating a worker with live sockets and watchers tears everything down without a crash.
import assert from 'node:assert/strict';
import { on, once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { connect, createFifo, listen, nativeStatus } from 'interprocess';
import { notOnWindows, openFds, readAll, scratchDir, spawnFixture, uniqueName } from '../helpers.js';

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

/**
 * Makes `wanted` descriptor numbers this thread's own: descriptors are numbered lowest-free first,
 * so files are opened until each wanted number is taken (the others are closed again).
 */
function takeNumbers(wanted: readonly number[], dir: string): Map<number, string> {
  const mine = new Map<number, string>();
  const spare: number[] = [];
  for (let i = 0; mine.size < wanted.length && i < 10_000; i++) {
    const file = path.join(dir, `mine-${i}`);
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT);
    if (wanted.includes(fd)) mine.set(fd, file);
    else spare.push(fd);
  }
  for (const fd of spare) fs.closeSync(fd);
  assert.equal(mine.size, wanted.length, `could not take descriptors ${wanted.join(', ')}`);
  return mine;
}

test('FIFO ends opened and closed in a worker are not closed again when it exits (the numbers are reused here)', { skip: notOnWindows.fifo, timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  const fifo = path.join(dir, 'f');
  await createFifo(fifo);
  for (let round = 0; round < 3; round++) {
    const worker = new Worker(new URL('../fixtures/worker-fifo.js', import.meta.url), { workerData: { fifo } });
    const [report] = (await once(worker, 'message')) as [{ fds: number[]; data: string }];
    assert.equal(report.data, 'through the fifo');
    // The worker has closed its ends: this thread now opens files at those very numbers.
    const mine = takeNumbers(report.fds, dir);
    worker.postMessage('exit');
    const [code] = (await once(worker, 'exit')) as [number];
    assert.equal(code, 0);
    for (const [fd, file] of mine) {
      const stats = fs.fstatSync(fd); // EBADF if the worker's teardown closed it
      assert.equal(stats.ino, fs.statSync(file).ino, `descriptor ${fd} is still this thread's file`);
      assert.equal(fs.writeSync(fd, `still mine ${fd}`, 0), `still mine ${fd}`.length);
      fs.closeSync(fd);
      assert.equal(fs.readFileSync(file, 'utf8'), `still mine ${fd}`);
    }
  }
});

test('descriptors received, converted and closed in a worker: no warning from Node', { skip: notOnWindows.fifo, timeout: 60_000 }, async (t) => {
  const fifo = path.join(scratchDir(t), 'f');
  await createFifo(fifo);
  const child = spawnFixture(t, 'worker-fd-warnings', [fifo], process.env, { execArgv: ['--expose-gc'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let stderr = '';
  child.child.stderr!.on('data', (chunk) => (stderr += chunk));
  child.child.stdout!.resume();
  const done = await child.next<{ closed: number }>('done');
  assert.equal(done.closed, 200);
  assert.deepEqual(await child.exited, { code: 0, signal: null });
  const warnings = stderr.split('\n').filter((line) => /Warning/.test(line));
  assert.deepEqual(warnings.slice(0, 3), [], `${warnings.length} warnings on stderr`);
});

test('60 workers terminated while connecting, accepting and pairing sockets leak no descriptor', { skip: notOnWindows.fifo, timeout: 120_000 }, async () => {
  // Warm up: what the first worker and the first sockets load lazily stays loaded.
  const warm = new Worker(new URL('../fixtures/worker-churn.js', import.meta.url), { workerData: { name: uniqueName('churn'), type: 'stream' } });
  await once(warm, 'message');
  await warm.terminate();
  await sleep(50);
  const before = openFds();
  let started = 0;
  const runOne = async () => {
    const i = started++;
    const worker = new Worker(new URL('../fixtures/worker-churn.js', import.meta.url), { workerData: { name: uniqueName('churn'), type: i % 2 === 0 ? 'stream' : 'seqpacket' } });
    await once(worker, 'message');
    await sleep(Math.random() * 30);
    await worker.terminate();
  };
  const lanes = Array.from({ length: 3 }, async () => {
    while (started < 60) await runOne();
  });
  await Promise.all(lanes);
  await sleep(100);
  assert.equal(openFds(), before, 'every socket of the terminated workers is closed');
});

test('descriptors the addon made in a worker and nobody wrapped are closed when it is terminated', { skip: notOnWindows.fifo, timeout: 30_000 }, async (t) => {
  const fifo = path.join(scratchDir(t), 'f');
  await createFifo(fifo);
  await sleep(10);
  const before = openFds();
  for (let round = 0; round < 3; round++) {
    const worker = new Worker(new URL('../fixtures/worker-unclaimed.js', import.meta.url), { workerData: { fifo, abstractName: uniqueName('unclaimed') } });
    const [report] = (await once(worker, 'message')) as [{ made: number }];
    assert.ok(report.made >= 11, `the worker made ${report.made} descriptors`);
    await worker.terminate();
  }
  await sleep(50);
  assert.equal(openFds(), before, 'the registry of unclaimed descriptors closed them all');
});
