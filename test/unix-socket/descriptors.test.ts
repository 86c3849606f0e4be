// Descriptor passing (SCM_RIGHTS): to another process, many at once, on every socket type, into
// usable objects, and never leaked, even when the receiver allows fewer than were sent.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type UnixSocketType, unixSocketPair } from 'interprocess';
import { openFds, readAll, scratchDir, spawnFixture, uniqueName } from '../helpers.js';

function closeOnExec(fd: number): boolean {
  const flags = /flags:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
  return (parseInt(flags, 8) & 0o2000000) !== 0;
}

test('a pipe end and a file go to a child process, which uses them', { timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  const fifo = path.join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  const readEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const writeEnd = fs.openSync(fifo, fs.constants.O_WRONLY);
  fs.writeFileSync(path.join(dir, 'file.txt'), 'the file we sent');
  const file = await fsp.open(path.join(dir, 'file.txt'), 'r');
  const [ours, theirs] = unixSocketPair({ type: 'seqpacket' });
  t.after(() => ours.close());
  const child = spawnFixture(t, 'unix-fd-child', [], process.env, { extraFds: [theirs.fd] });
  await theirs.close();
  const reader = new net.Socket({ fd: readEnd, readable: true, writable: false });
  const piped = readAll(reader);
  await ours.send('here you are', { fds: [writeEnd, file] });
  // Ours stay open: sending duplicates them into the child. Close ours so the pipe can end.
  fs.closeSync(writeEnd);
  await file.close();
  const report = JSON.parse(String((await ours.receive())!.data)) as { kinds: string[]; closeOnExec: boolean[]; said: string };
  assert.deepEqual(report.kinds, ['fifo', 'file']);
  assert.deepEqual(report.closeOnExec, [true, true], 'received descriptors are close-on-exec');
  assert.equal(report.said, 'here you are');
  assert.equal(String(await piped), 'child read: the file we sent');
  assert.equal((await child.exited).code, 0);
});

for (const type of ['datagram', 'seqpacket', 'stream'] as const satisfies readonly UnixSocketType[]) {
  test(`${type}: 100 descriptors in one message arrive, each open and close-on-exec; a receiver that allows fewer gets ERR_INTERPROCESS_CTRUNC and leaks none`, async (t) => {
    const [a, b] = unixSocketPair({ type, maxFds: 100 });
    t.after(() => Promise.all([a.close(), b.close()]));
    const file = fs.openSync(process.execPath, 'r');
    t.after(() => fs.closeSync(file));
    const hundred = Array.from({ length: 100 }, () => file);
    await sleep(10);
    const before = openFds();

    await a.send('with 100', { fds: hundred });
    const message = (await b.receive())!;
    assert.equal(String(message.data), 'with 100');
    assert.equal(message.fds.length, 100);
    const numbers = message.fds.map((d) => d.fd);
    assert.equal(new Set(numbers).size, 100, 'each arrived as its own descriptor');
    assert.ok(numbers.every(closeOnExec), 'every one is close-on-exec');
    assert.ok(message.fds.every((d) => d.kind === 'file'));
    assert.equal(openFds(), before + 100);
    for (const d of message.fds) d.close();
    assert.equal(openFds(), before);

    // The other way, to a receiver that accepts 10: an error, nothing leaked, still usable.
    const [c, d] = unixSocketPair({ type, maxFds: 10 });
    t.after(() => Promise.all([c.close(), d.close()]));
    const baseline = openFds();
    await c.send('too many', { fds: hundred });
    await assert.rejects(d.receive(), (error: Error & { code?: string; data?: Buffer }) => {
      assert.equal(error.code, 'ERR_INTERPROCESS_CTRUNC');
      assert.match(error.message, /maxFds: 10/);
      assert.equal(String(error.data), 'too many');
      return true;
    });
    assert.equal(openFds(), baseline, 'the descriptors that did arrive were closed');
    await c.send('after', { fds: [file] });
    const after = (await d.receive())!;
    assert.equal(String(after.data), 'after');
    assert.equal(after.fds.length, 1);
    after.fds[0]!.close();
    assert.equal(openFds(), baseline);
  });
}

test('received descriptors become a net.Server, one of our sockets, or a raw number', async (t) => {
  const [a, b] = unixSocketPair({ type: 'datagram' });
  t.after(() => Promise.all([a.close(), b.close()]));
  // A Unix stream listener from node:net, on an abstract name (closing a net.Server unlinks its file).
  const socketPath = `\0${uniqueName()}`;
  const server = net.createServer((conn) => conn.end('served by the received server'));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  await a.send('a server', { fds: [server] });
  const [received] = (await b.receive())!.fds;
  assert.equal(received!.kind, 'socket');
  assert.equal(received!.socketType, 'stream');
  assert.equal(received!.listening, true);
  await new Promise<void>((resolve) => server.close(() => resolve())); // only the received copy listens now
  const adopted = await received!.toNetServer();
  t.after(() => adopted.close());
  adopted.on('connection', (conn) => conn.end('served by the received server'));
  assert.equal(String(await readAll(net.connect(socketPath))), 'served by the received server');
  assert.throws(() => received!.take(), { code: 'ERR_INTERPROCESS_DESCRIPTOR_TAKEN' });

  // One end of a seqpacket pair, sent and wrapped again: messages still keep their boundaries.
  const [left, right] = unixSocketPair({ type: 'seqpacket' });
  t.after(() => left.close());
  await a.send('a socket', { fds: [right] });
  await right.close();
  const wrapped = (await b.receive())!.fds[0]!.toUnixSocket();
  t.after(() => wrapped.close());
  assert.equal(wrapped.type, 'seqpacket');
  await left.send('one');
  await left.send('two');
  assert.equal(String((await wrapped.receive())!.data), 'one');
  assert.equal(String((await wrapped.receive())!.data), 'two');

  // A raw number, ours to close; a wrong conversion is a clear error and takes nothing.
  await a.send('a number', { fds: [0] });
  const raw = (await b.receive())!.fds[0]!;
  await assert.rejects(raw.toNetServer(), { code: 'ERR_INVALID_ARG_VALUE' });
  const fd = raw.take();
  assert.ok(fd > 2);
  fs.closeSync(fd);
});
