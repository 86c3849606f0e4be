// Unnamed pipes across real processes: bulk data, end of stream, close-on-exec, handing ends to
// children, synchronous I/O, descriptors in and out.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_PIPE_SIZE, PipeReceiver, PipeSender, pipe, pipeSize, spawnWith, unixSocketPair } from 'interprocess';
import { openFds, patternBytes, readAll, scratchDir, exitOf } from '../helpers.js';

const child = fileURLToPath(new URL('../fixtures/pipe-child.js', import.meta.url));
// The IPC channel, when wanted, goes at fd 5, clear of the pipe ends at 3 and 4.
const node = (args: string[], fds: Record<number, PipeSender | PipeReceiver>, ipc = false) =>
  spawnWith(process.execPath, [child, ...args], { fds, stdio: ['ignore', 'inherit', 'inherit', ...(ipc ? (['ignore', 'ignore', 'ipc'] as const) : [])] });

test('256 MiB to a child through one pipe and back through another, checksummed', { timeout: 120_000 }, async () => {
  const before = openFds();
  const out = pipe();
  const back = pipe();
  const echo = node(['echo'], { 3: out.receiver, 4: back.sender });
  const block = patternBytes(1024 * 1024, 42);
  const total = 256;
  const sent = createHash('sha256');
  const source = Readable.from(
    (function* () {
      for (let i = 0; i < total; i++) {
        block.writeUInt32LE(i, 0); // every MiB differs
        sent.update(block);
        yield Buffer.from(block);
      }
    })(),
  );
  const received = createHash('sha256');
  let length = 0;
  back.receiver.on('data', (chunk: Buffer) => {
    received.update(chunk);
    length += chunk.length;
  });
  const ended = once(back.receiver, 'end');
  await pipeline(source, out.sender);
  await ended;
  assert.equal(length, total * 1024 * 1024);
  assert.equal(received.digest('hex'), sent.digest('hex'));
  const code = await exitOf(echo);
  assert.equal(code, 0);
  back.receiver.destroy();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(openFds(), before, 'no descriptor leaked');
});

test('end of stream once the last copy of the sender closes', async () => {
  const { sender, receiver } = pipe();
  const ends = [receiver.readableEnded];
  const writer = node(['write', 'from the child'], { 3: sender });
  // spawnWith closed our copy: the child's is the last one, so its exit ends the stream.
  assert.equal(sender.destroyed, true);
  assert.equal(String(await readAll(receiver)), 'from the child');
  ends.push(receiver.readableEnded);
  assert.deepEqual(ends, [false, true]);
  await exitOf(writer);
});

test('close-on-exec: a child that inherited nothing does not hold our ends open', async (t) => {
  const { sender, receiver } = pipe();
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'], { stdio: 'ignore' });
  t.after(() => sleeper.kill('SIGKILL'));
  sender.end('bye');
  // If the child had inherited the sender, no end of stream would come while it lives.
  assert.equal(String(await readAll(receiver)), 'bye');
  assert.equal(sleeper.exitCode, null, 'the child still runs');
});

test('close-on-exec: a child holding its own end does not hold ours', async (t) => {
  const ours = pipe();
  const its = pipe();
  const lingering = node(['linger'], { 3: its.sender }, true);
  t.after(() => lingering.kill('SIGKILL'));
  await once(lingering, 'message');
  ours.sender.end('still ends');
  assert.equal(String(await readAll(ours.receiver)), 'still ends');
  its.receiver.destroy();
});

test('data written before the receiver is handed to a child all reaches the child', async () => {
  const { sender, receiver } = pipe();
  sender.write('written early, ');
  await new Promise((resolve) => setTimeout(resolve, 50)); // time for a careless receiver to read it
  const drain = node(['drain'], { 3: receiver }, true);
  sender.end('and late');
  const [message] = (await once(drain, 'message')) as [{ text: string }];
  assert.equal(message.text, 'written early, and late');
});

test('synchronous reads and writes between two processes', { timeout: 60_000 }, async () => {
  const out = pipe();
  const back = pipe();
  const echo = node(['sync'], { 3: out.receiver, 4: back.sender });
  const buffer = Buffer.alloc(65536);
  for (let i = 0; i < 200; i++) {
    const message = patternBytes(1000 + i * 37, i);
    assert.equal(out.sender.writeSync(message), message.length);
    let got = 0;
    const echoed = Buffer.alloc(message.length);
    while (got < message.length) {
      const n = back.receiver.readSync(buffer.subarray(0, message.length - got), { timeout: 10_000 });
      assert.ok(n > 0, 'no early end of stream');
      buffer.copy(echoed, got, 0, n);
      got += n;
    }
    assert.ok(echoed.equals(message), `message ${i}`);
  }
  out.sender.destroy();
  assert.equal(back.receiver.readSync(buffer, { timeout: 10_000 }), 0, 'end of stream reads as 0');
  const code = await exitOf(echo);
  assert.equal(code, 0);
  back.receiver.destroy();
});

test('synchronous calls: timeout, EPIPE, and no overtaking queued writes', () => {
  const { sender, receiver } = pipe({ size: 65536 });
  assert.throws(() => receiver.readSync(Buffer.alloc(10), { timeout: 20 }), { code: 'ETIMEDOUT' });
  while (sender.write(Buffer.alloc(65536))); // queue more than the pipe holds
  assert.throws(() => sender.writeSync('x'), { code: 'ERR_INVALID_STATE' });
  sender.destroy();
  const second = pipe();
  second.receiver.destroy();
  assert.throws(() => second.sender.writeSync('nobody reads'), { code: 'EPIPE', message: /No receiver is left/ });
  second.sender.destroy();
  receiver.destroy();
});

test('descriptors out and in: intoFd() hands over ownership, fromFd() takes it back', async () => {
  const { sender, receiver } = pipe();
  const raw = sender.intoFd();
  assert.equal(sender.destroyed, true);
  assert.equal(fs.writeSync(raw, 'raw write'), 9);
  const again = PipeSender.fromFd(raw);
  again.end(', then a stream');
  assert.equal(String(await readAll(receiver)), 'raw write, then a stream');
  // Nothing buffered may be lost: with unread data in the stream, intoFd refuses.
  const second = pipe();
  second.sender.write('unread');
  second.receiver.resume();
  second.receiver.pause();
  await once(second.receiver, 'readable');
  assert.throws(() => second.receiver.intoFd(), { code: 'ERR_INVALID_STATE' });
  second.sender.destroy();
  second.receiver.destroy();
});

test('spawnWith refuses a descriptor that stdio already uses', () => {
  const { sender, receiver } = pipe();
  assert.throws(() => spawnWith(process.execPath, ['-e', ''], { fds: { 3: receiver }, stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /descriptor 3, where options.stdio already has "ipc"/,
  });
  assert.equal(receiver.destroyed, false, 'nothing was handed over');
  sender.destroy();
  receiver.destroy();
});

test('spawnWith hands a socket to a child: a UnixSocket pair\'s other end, and a net.Socket', { skip: process.platform === 'win32' && 'Unix sockets and shell redirections' }, async (t) => {
  const before = openFds();
  // The other end of a pair, as docs/channel.md describes: the child writes to fd 3, we read.
  const [ours, theirs] = unixSocketPair();
  const child = spawnWith('/bin/sh', ['-c', 'printf "from the child" >&3'], { fds: { 3: theirs }, stdio: 'ignore' });
  const chunks: Buffer[] = [];
  for (let message = await ours.receive(); message; message = await ours.receive()) chunks.push(message.data);
  assert.equal(Buffer.concat(chunks).toString(), 'from the child');
  assert.equal(await exitOf(child), 0);
  await ours.close();
  // A plain net.Socket (an accepted connection): the child answers on it.
  const address = path.join(scratchDir(t), 's');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(address, resolve));
  const client = net.connect(address);
  const [accepted] = (await once(server, 'connection')) as [net.Socket];
  const answered = readAll(client);
  const second = spawnWith('/bin/sh', ['-c', 'printf pong >&3'], { fds: { 3: accepted }, stdio: 'ignore' });
  assert.equal(accepted.destroyed, true);
  assert.equal(String(await answered), 'pong');
  assert.equal(await exitOf(second), 0);
  server.close();
  assert.throws(() => spawnWith('/bin/sh', ['-c', ''], { fds: { 3: {} as never } }), { code: 'ERR_INVALID_ARG_TYPE', message: /socket/ });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(openFds(), before);
});

test('fromFd refuses what is not a pipe', (t) => {
  const file = path.join(scratchDir(t), 'regular');
  fs.writeFileSync(file, '');
  const fd = fs.openSync(file, 'r');
  try {
    assert.throws(() => PipeReceiver.fromFd(fd), { code: 'ERR_INVALID_ARG_VALUE', message: /must be a pipe, FIFO or socket/ });
  } finally {
    fs.closeSync(fd);
  }
  assert.throws(() => PipeSender.fromFd(-1), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => PipeSender.fromFd(987_654), { code: 'EBADF' });
});

test('pipe size: the default, and a chosen one', () => {
  if (process.platform === 'win32') {
    // Windows has no size to read back: the size is the buffer the pipe was created with.
    const p = pipe({ size: 65536 });
    assert.equal(pipeSize(p.sender), null);
    assert.throws(() => pipe({ size: 0 }), { code: 'ERR_INVALID_ARG_VALUE' });
    p.sender.destroy();
    p.receiver.destroy();
    return;
  }
  const max = Number(fs.readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'));
  const first = pipe();
  assert.equal(pipeSize(first.sender), Math.min(DEFAULT_PIPE_SIZE, max));
  const second = pipe({ size: 65536 });
  assert.equal(pipeSize(second.receiver), 65536);
  assert.throws(() => pipe({ size: 0 }), { code: 'ERR_INVALID_ARG_VALUE' });
  for (const p of [first, second]) {
    p.sender.destroy();
    p.receiver.destroy();
  }
});

test('blocking mode can be switched', () => {
  const { sender, receiver } = pipe();
  sender.setBlocking(true);
  assert.equal(sender.writeSync('blocking write'), 14);
  sender.setBlocking(false);
  assert.equal(receiver.readSync(Buffer.alloc(64)), 14);
  sender.destroy();
  receiver.destroy();
  assert.throws(() => sender.setBlocking(true), { code: 'ERR_SOCKET_CLOSED' });
});

test('no descriptor leaks across pipes, hand-overs, take-outs and failures', async () => {
  const warm = pipe(); // let lazily opened descriptors (e.g. /proc/sys/fs/pipe-max-size reads) settle
  warm.sender.destroy();
  warm.receiver.destroy();
  await new Promise((resolve) => setImmediate(resolve));
  const before = openFds();
  for (let i = 0; i < 20; i++) {
    const { sender, receiver } = pipe();
    const writer = node(['write', `round ${i}`], { 3: sender });
    assert.equal(String(await readAll(receiver)), `round ${i}`);
    await exitOf(writer);
    const second = pipe();
    fs.closeSync(second.sender.intoFd());
    assert.equal(second.receiver.readSync(Buffer.alloc(8)), 0);
    second.receiver.destroy();
    const third = pipe();
    third.receiver.destroy();
    assert.throws(() => third.sender.writeSync('x'), { code: 'EPIPE' });
    third.sender.destroy();
    assert.throws(() => PipeReceiver.fromFd(987_654), { code: 'EBADF' });
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(openFds(), before);
});

// The reused-buffer reader (onChunk): issue 3's fast path for bulk data.

test('onChunk: 64 MiB to a child reading into one reused buffer, checksummed, with pauses', { timeout: 120_000 }, async () => {
  const before = openFds();
  const { sender, receiver } = pipe();
  const size = 100_000; // not a power of two: chunks end anywhere
  const reader = node(['chunks', String(size)], { 3: receiver }, true);
  const report = once(reader, 'message');
  const block = patternBytes(1024 * 1024, 7);
  const sent = createHash('sha256');
  const total = 64;
  for (let i = 0; i < total; i++) {
    block.writeUInt32LE(i, 0);
    sent.update(block);
    // Backpressure: the reader pauses, the pipe fills, and write() says so.
    if (!sender.write(Buffer.from(block))) await once(sender, 'drain');
  }
  sender.end();
  const [message] = (await report) as [{ sha256: string; bytes: number; chunks: number; largest: number }];
  assert.equal(message.bytes, total * 1024 * 1024);
  assert.equal(message.sha256, sent.digest('hex'));
  assert.ok(message.largest <= size, `no chunk is larger than the read buffer (largest: ${message.largest})`);
  assert.ok(message.chunks >= Math.ceil((total * 1024 * 1024) / size));
  assert.equal(await exitOf(reader), 0);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(openFds(), before, 'no descriptor leaked');
});

test('onChunk: views of the given buffer, then end and close; no data events', async () => {
  const before = openFds();
  const readBuffer = new Uint8Array(16);
  const seen: string[] = [];
  let viewsOfBuffer = true;
  const { sender, receiver } = pipe({
    receiver: {
      readBuffer,
      onChunk(chunk) {
        viewsOfBuffer &&= chunk.buffer === readBuffer.buffer && chunk.length <= 16;
        seen.push(chunk.toString());
      },
    },
  });
  receiver.on('data', () => assert.fail('no data events with onChunk'));
  const closed = once(receiver, 'close');
  const ended = once(receiver, 'end');
  sender.end('0123456789abcdef and more than sixteen bytes');
  await ended;
  await closed;
  assert.equal(seen.join(''), '0123456789abcdef and more than sixteen bytes');
  assert.ok(seen.length >= 3, 'at most 16 bytes per chunk');
  assert.ok(viewsOfBuffer, 'every chunk is a view of the given buffer');
  assert.equal(receiver.read(), null);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(openFds(), before, 'no descriptor leaked');
});

test('onChunk: pause() and resume() stop and restart reading; the writer is held back meanwhile', async () => {
  let got = 0;
  const { sender, receiver } = pipe({ size: 65536, receiver: { onChunk: (chunk) => void (got += chunk.length) } });
  receiver.pause();
  const big = Buffer.alloc(1024 * 1024, 1);
  const accepted = sender.write(big);
  assert.equal(accepted, false, 'a megabyte does not fit in a 64 KiB pipe');
  await new Promise((resolve) => setTimeout(resolve, 50));
  const whilePaused = got;
  assert.ok(whilePaused < big.length, `nothing like all of it is read while paused (${whilePaused})`);
  receiver.resume();
  await once(sender, 'drain');
  sender.end();
  await once(receiver, 'end');
  assert.equal(got, big.length);
});

test('onChunk: a callback that throws destroys the receiver with that error; bad options are refused', async () => {
  const before = openFds();
  const failure = new Error('parser broke');
  const { sender, receiver } = pipe({
    receiver: {
      onChunk() {
        throw failure;
      },
    },
  });
  const error = once(receiver, 'error');
  sender.write('x');
  assert.equal((await error)[0], failure);
  await once(receiver, 'close');
  sender.destroy();
  assert.throws(() => pipe({ receiver: { onChunk: 'no' as never } }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => pipe({ receiver: { onChunk() {}, readBuffer: 0 } }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => pipe({ receiver: { onChunk() {}, readBuffer: 'big' as never } }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => pipe({ receiver: { readBuffer: 1024 } }), { code: 'ERR_INVALID_ARG_VALUE', message: /only with options.onChunk/ });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(openFds(), before, 'no descriptor leaked, refused options included');
});
