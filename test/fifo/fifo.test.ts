// FIFO files: creation, opening in either order without blocking any thread, the shell, and
// readers that stay open across writers.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createFifo, openFifoReader, openFifoWriter } from 'interprocess';
import { nodeForAnyUser, notOnWindows, openFds, readAll, scratchDir, exitOf } from '../helpers.js';

test('on Windows, every FIFO call fails with ERR_INTERPROCESS_UNSUPPORTED, saying why', { skip: process.platform !== 'win32' && 'Windows behaviour (FIFOs are tested below on this platform)' }, async () => {
  const unsupported = { code: 'ERR_INTERPROCESS_UNSUPPORTED', message: /Windows has no FIFO files/ };
  await assert.rejects(createFifo('C:\\fifo'), unsupported);
  assert.throws(() => openFifoReader('C:\\fifo'), unsupported);
  await assert.rejects(openFifoWriter('C:\\fifo'), unsupported);
  // Bad arguments are still reported as such first.
  await assert.rejects(createFifo(''), { code: 'ERR_INVALID_ARG_VALUE' });
});

test('createFifo: exact mode, EEXIST, and reuse of a FIFO only', { skip: notOnWindows.fifo }, async (t) => {
  const dir = scratchDir(t);
  const fifo = path.join(dir, 'f');
  await createFifo(fifo, { mode: 0o640 });
  const stats = fs.lstatSync(fifo);
  assert.ok(stats.isFIFO());
  assert.equal(stats.mode & 0o777, 0o640);
  await assert.rejects(createFifo(fifo), { code: 'EEXIST', message: /reuse: true/ });
  await createFifo(fifo, { reuse: true });
  const file = path.join(dir, 'regular');
  fs.writeFileSync(file, 'keep');
  await assert.rejects(createFifo(file, { reuse: true }), { code: 'EEXIST', message: /not a FIFO/ });
  assert.equal(fs.readFileSync(file, 'utf8'), 'keep');
  await assert.rejects(createFifo(''), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(createFifo(path.join(dir, 'no', 'such', 'dir')), { code: 'ENOENT' });
  await assert.rejects(createFifo(fifo, { mode: 0o1000 }), { code: 'ERR_INVALID_ARG_VALUE' });
});

test('reader first, then the writer: data flows, and the reader ends when the writer closes', { skip: notOnWindows.fifo }, async (t) => {
  const fifo = path.join(scratchDir(t), 'f');
  await createFifo(fifo);
  const reader = openFifoReader(fifo);
  const received = readAll(reader);
  await sleep(30); // a reader with no writer yet must not see end of stream
  assert.equal(reader.readableEnded, false);
  const writer = await openFifoWriter(fifo, { wait: true, timeout: 5000 });
  writer.end('reader first');
  assert.equal(String(await received), 'reader first');
});

test('writer first: it waits for a reader, then data flows', { skip: notOnWindows.fifo }, async (t) => {
  const fifo = path.join(scratchDir(t), 'f');
  await createFifo(fifo);
  const opening = openFifoWriter(fifo, { wait: true, timeout: 10_000 });
  await sleep(100);
  const reader = openFifoReader(fifo);
  const writer = await opening;
  writer.end('writer first');
  assert.equal(String(await readAll(reader)), 'writer first');
});

test('a writer with no reader: ETIMEDOUT, ENXIO without wait, ABORT_ERR', { skip: notOnWindows.fifo }, async (t) => {
  const fifo = path.join(scratchDir(t), 'f');
  await createFifo(fifo);
  await assert.rejects(openFifoWriter(fifo, { wait: true, timeout: 50 }), { code: 'ETIMEDOUT', message: /No reader opened the FIFO/ });
  await assert.rejects(openFifoWriter(fifo, { wait: false }), { code: 'ENXIO', message: /No reader has it open/ });
  // No wait by default, as every connect: the error says how to wait.
  await assert.rejects(openFifoWriter(fifo), { code: 'ENXIO', message: /pass \{ wait: true \}/ });
  await assert.rejects(openFifoWriter(fifo, { timeout: 10_000 }), { code: 'ENXIO', message: /pass \{ wait: true \}/ });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 30);
  await assert.rejects(openFifoWriter(fifo, { wait: true, signal: controller.signal }), { code: 'ABORT_ERR' });
  await assert.rejects(openFifoWriter(fifo, { wait: true, signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
});

test('with wait, a writer also waits for the FIFO to be created', { skip: notOnWindows.fifo }, async (t) => {
  const fifo = path.join(scratchDir(t), 'later');
  const opening = openFifoWriter(fifo, { wait: true, timeout: 10_000 });
  await sleep(50);
  await createFifo(fifo);
  const reader = openFifoReader(fifo);
  (await opening).end('created late');
  assert.equal(String(await readAll(reader)), 'created late');
  await assert.rejects(openFifoWriter(path.join(path.dirname(fifo), 'never'), { wait: true, timeout: 30 }), { code: 'ETIMEDOUT' });
});

test('not a FIFO, or missing: clear errors', { skip: notOnWindows.fifo }, async (t) => {
  const dir = scratchDir(t);
  const file = path.join(dir, 'regular');
  fs.writeFileSync(file, '');
  assert.throws(() => openFifoReader(file), { code: 'ERR_INVALID_ARG_VALUE', message: /is not a FIFO/ });
  await assert.rejects(openFifoWriter(file, { wait: false }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => openFifoReader(path.join(dir, 'missing')), { code: 'ENOENT' });
  await assert.rejects(openFifoWriter(path.join(dir, 'missing'), { wait: false }), { code: 'ENOENT', message: /createFifo/ });
});

test('the shell: mkfifo and printf write, we read; we write, cat reads', { skip: notOnWindows.fifo }, async (t) => {
  const dir = scratchDir(t);
  const fifo = path.join(dir, 'shell');
  await promisify(execFile)('mkfifo', [fifo]);
  const reader = openFifoReader(fifo);
  const printf = spawn('sh', ['-c', `printf 'from the shell' > '${fifo}'`]);
  assert.equal(String(await readAll(reader)), 'from the shell');
  await exitOf(printf);

  const cat = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
  const writer = await openFifoWriter(fifo, { wait: true, timeout: 10_000 });
  writer.end('to cat');
  assert.equal(String(await readAll(cat.stdout)), 'to cat');
});

test('keepOpen: the reader stays open across writers in turn', { skip: notOnWindows.fifo }, async (t) => {
  const fifo = path.join(scratchDir(t), 'f');
  await createFifo(fifo);
  const reader = openFifoReader(fifo, { keepOpen: true });
  let text = '';
  reader.on('data', (chunk) => (text += chunk));
  for (const word of ['first', 'second', 'third']) {
    const writer = await openFifoWriter(fifo, { wait: true, timeout: 5000 });
    writer.end(`${word};`);
    await once(writer, 'close');
    while (!text.endsWith(`${word};`)) await sleep(5);
  }
  assert.equal(text, 'first;second;third;');
  assert.equal(reader.readableEnded, false, 'no end of stream between writers');
  reader.destroy();
});

test('no thread-pool starvation: 10 writers wait on 10 FIFOs while fs still works', { skip: notOnWindows.fifo, timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  const controller = new AbortController();
  const fifos = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
    const fifo = path.join(dir, `f${i}`);
    await createFifo(fifo);
    return fifo;
  }));
  const waiting = fifos.map((fifo) => openFifoWriter(fifo, { wait: true, signal: controller.signal }).catch((e: { code: string }) => e.code));
  // With blocking opens, 10 waiting writers would hold all 4 thread-pool threads and this would hang.
  const file = path.join(dir, 'data');
  for (let i = 0; i < 20; i++) {
    await fs.promises.writeFile(file, `round ${i}`);
    assert.equal(await fs.promises.readFile(file, 'utf8'), `round ${i}`);
  }
  // The writers are still waiting, and each gets its reader.
  const readers = fifos.map((fifo) => openFifoReader(fifo));
  const writers = await Promise.all(waiting);
  for (const writer of writers) {
    assert.notEqual(typeof writer, 'string');
    (writer as import('interprocess').PipeSender).end('x');
  }
  for (const reader of readers) assert.equal(String(await readAll(reader)), 'x');
  controller.abort();
});

test('no descriptor leaks across FIFO use and failures', { skip: notOnWindows.fifo }, async (t) => {
  const dir = scratchDir(t);
  const fifo = path.join(dir, 'f');
  await createFifo(fifo);
  const before = openFds();
  for (let i = 0; i < 10; i++) {
    const reader = openFifoReader(fifo, { keepOpen: i % 2 === 0 });
    const writer = await openFifoWriter(fifo);
    writer.end('y');
    reader.resume();
    if (i % 2 === 0) {
      await once(writer, 'close');
      reader.destroy();
    } else {
      await once(reader, 'end');
    }
    await assert.rejects(openFifoWriter(fifo, { wait: true, timeout: 5 }), { code: 'ETIMEDOUT' });
  }
  await sleep(20);
  assert.equal(openFds(), before);
});

test('a reader with onChunk: the shell writes, chunks come in a reused buffer, then the end', { skip: notOnWindows.fifo }, async (t) => {
  const before = openFds();
  const fifo = path.join(scratchDir(t), 'f');
  await createFifo(fifo);
  const parts: string[] = [];
  const reader = openFifoReader(fifo, { readBuffer: 8, onChunk: (chunk) => void parts.push(chunk.toString()) });
  const ended = once(reader, 'end');
  const closed = once(reader, 'close');
  await sleep(30); // no writer yet: no end of stream
  assert.equal(reader.readableEnded, false);
  const shell = spawn('sh', ['-c', 'printf "from the shell, in pieces" > "$1"', 'sh', fifo], { stdio: 'ignore' });
  await ended;
  assert.equal(await exitOf(shell), 0);
  assert.equal(parts.join(''), 'from the shell, in pieces');
  assert.ok(parts.every((part) => part.length <= 8));
  await closed;
  assert.equal(openFds(), before, 'no descriptor leaked');
  assert.throws(() => openFifoReader(fifo, { onChunk: 1 as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(openFds(), before, 'a refused reader closes what it opened');
});

test('keepOpen on a FIFO this user may read but not write: a typed EACCES, and the reader is not leaked', { skip: notOnWindows.fifo || (process.getuid?.() !== 0 && 'needs root, to run the opener as another user') }, async (t) => {
  const dir = scratchDir(t);
  fs.chmodSync(dir, 0o755);
  const fifo = path.join(dir, 'f');
  await createFifo(fifo, { mode: 0o444 });
  fs.chownSync(fifo, 65534, 65534);
  const fixture = fileURLToPath(new URL('../fixtures/fifo-keeper.js', import.meta.url));
  const { stdout } = await promisify(execFile)(nodeForAnyUser(), [fixture, fifo], { uid: 65534, gid: 65534 });
  const outcome = JSON.parse(stdout) as { code?: string; message?: string; typed?: boolean; leaked: number };
  assert.equal(outcome.code, 'EACCES');
  assert.equal(outcome.typed, true, 'an InterprocessError');
  assert.match(outcome.message!, /keepOpen/);
  assert.equal(outcome.leaked, 0, 'the reader opened first is closed again');
});
