// The readiness watcher (uv_poll on Node's loop) that later primitives build on.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { requireNative } from '#internal/native/addon.js';
import { openFds, scratchDir } from '../helpers.js';

test('a watcher reports readability from the event loop, stops, and closes', async (t) => {
  const native = requireNative('test');
  const fifo = path.join(scratchDir(t), 'fifo');
  execFileSync('mkfifo', [fifo]);
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  t.after(() => fs.closeSync(fd));
  const events: Array<[number, number]> = [];
  const watcher = new native.Watcher(fd, (status, mask) => {
    events.push([status, mask]);
    watcher.stop();
  });
  watcher.start(native.pollEvents.READABLE);
  await sleep(30);
  assert.deepEqual(events, [], 'nothing to read yet');
  fs.writeSync(fd, 'x');
  await sleep(30);
  assert.deepEqual(events, [[0, native.pollEvents.READABLE]]);
  watcher.close();
  watcher.close(); // idempotent
  assert.throws(() => watcher.start(native.pollEvents.READABLE), { code: 'ERR_INTERPROCESS_CLOSED' });
});

test('a watcher validates its arguments', () => {
  const native = requireNative('test');
  assert.throws(() => new native.Watcher(-1, () => {}), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new native.Watcher(0, 'nope' as never), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => (native.Watcher as unknown as () => void)(), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('watchers that are dropped unclosed are collected without leaks or crashes', async (t) => {
  const native = requireNative('test');
  const fifo = path.join(scratchDir(t), 'fifo');
  execFileSync('mkfifo', [fifo]);
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  const before = openFds();
  for (let i = 0; i < 200; i++) new native.Watcher(fd, () => {});
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await sleep(20);
  assert.equal(openFds(), before, 'watchers never own the descriptor');
  fs.closeSync(fd);
});

test('peer credentials and the lock reject bad descriptors with system errors', (t) => {
  const native = requireNative('test');
  assert.throws(() => native.peerCredentials(999_999), { code: 'EBADF', syscall: 'getsockopt' });
  assert.throws(() => native.peerCredentials(-5), { code: 'ERR_INVALID_ARG_TYPE' });
  // A file of this test's own: the native fuzz (run alongside) may hold a lock on any shared one.
  const file = path.join(scratchDir(t), 'lock');
  fs.writeFileSync(file, '');
  const fd = fs.openSync(file, 'r');
  try {
    assert.throws(() => native.peerCredentials(fd), { code: 'ENOTSOCK' });
    assert.equal(native.tryLock(fd), true);
  } finally {
    fs.closeSync(fd);
  }
});

test('start() on a descriptor closed under the watcher throws EBADF instead of aborting the process', { skip: process.platform === 'win32' }, () => {
  const fixture = fileURLToPath(new URL('../fixtures/watcher-closed-fd.js', import.meta.url));
  const result = spawnSync(process.execPath, [fixture], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(result.signal, null, `the process lives (${result.stderr})`);
  assert.deepEqual(JSON.parse(result.stdout), { code: 'EBADF', fileCode: process.platform === 'linux' ? 'EPERM' : 'none' });
});

test('POLLERR (a peer reset) is readiness with ERROR, polling stops in step with libuv, and start() resumes it', { skip: process.platform === 'win32' }, async () => {
  const native = requireNative('test');
  const [a, b] = native.unixSockets.pair(2);
  fs.writeSync(a, 'left unread by the peer');
  fs.writeSync(b, 'sent before the reset');
  fs.closeSync(b); // with a's message unread: a's connection is reset
  const events: Array<[number, number]> = [];
  let signal: () => void = () => {};
  const watcher = new native.Watcher(a, (status, mask) => {
    events.push([status, mask]);
    signal();
  });
  await new Promise<void>((resolve) => {
    signal = resolve;
    watcher.start(native.pollEvents.READABLE);
  });
  const { READABLE, ERROR } = native.pollEvents;
  assert.deepEqual(events, [[0, READABLE | ERROR]], 'ready, with the error to be read');
  await sleep(30);
  assert.equal(events.length, 1, 'polling has stopped, as libuv stopped it');
  const buffer = Buffer.alloc(64);
  assert.throws(() => fs.readSync(a, buffer), { code: 'ECONNRESET' });
  assert.equal(buffer.toString('utf8', 0, fs.readSync(a, buffer)), 'sent before the reset');
  const resumed = new Promise<void>((resolve) => {
    const w = watcher;
    events.length = 0;
    w.start(READABLE); // the same watcher goes on (it knew it had stopped)
    setTimeout(() => {
      w.stop();
      resolve();
    }, 30);
  });
  await resumed;
  assert.ok(events.length > 0 && events.every(([status, mask]) => status === 0 && (mask & ERROR) === 0), `readable at the end, no error left (${JSON.stringify(events)})`);
  assert.equal(fs.readSync(a, buffer), 0, 'then the end');
  watcher.close();
  fs.closeSync(a);
});
