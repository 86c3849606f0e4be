// Bad input and every way a socket can fail: each is a clear InterprocessError with a stable
// code, and the socket is still usable afterwards. No descriptor leaks across all of it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { InterprocessError, type UnixSocket, bindDatagram, connectUnix, fsName, listenUnix, nsName, unixSocketPair } from 'interprocess';
import { openFds, scratchDir, uniqueName } from '../helpers.js';

async function stillWorks(sender: UnixSocket, receiver: UnixSocket, options?: { to: string }): Promise<void> {
  await sender.send('still works', options);
  assert.equal(String((await receiver.receive())!.data), 'still works');
}

test('bad sends: a missing path, an unbound name, a message too large, a non-descriptor: clear errors, the socket still usable', async (t) => {
  const dir = scratchDir(t);
  const target = path.join(dir, 'target.sock');
  await using receiver = await bindDatagram(target);
  await using sender = await bindDatagram();

  await assert.rejects(sender.send('x', { to: path.join(dir, 'missing.sock') }), (e: Error & { code: string }) => {
    assert.equal(e.code, 'ENOENT');
    assert.match(e.message, /missing\.sock/);
    assert.match(e.message, /start the receiver first/);
    return true;
  });
  await assert.rejects(sender.send('x', { to: nsName(uniqueName('nobody')) }), { code: 'ECONNREFUSED' });
  await stillWorks(sender, receiver, { to: target });

  await assert.rejects(sender.send(Buffer.alloc(400_000), { to: target }), (e: Error & { code: string }) => {
    assert.equal(e.code, 'EMSGSIZE');
    assert.match(e.message, /400000 bytes/);
    return true;
  });
  await stillWorks(sender, receiver, { to: target });

  await assert.rejects(sender.send('x', { to: target, fds: ['not a descriptor' as never] }), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(sender.send('x', { to: target, fds: [-1] }), { code: 'ERR_INVALID_ARG_VALUE' });
  const closed = fs.openSync(process.execPath, 'r');
  fs.closeSync(closed);
  await assert.rejects(sender.send('x', { to: target, fds: [closed] }), (e: Error & { code: string }) => {
    assert.equal(e.code, 'EBADF');
    assert.match(e.message, /not open/);
    return true;
  });
  await stillWorks(sender, receiver, { to: target });

  await assert.rejects(sender.send('x'), { code: 'ERR_INVALID_ARG_VALUE', message: /no default peer/ });
  await assert.rejects(sender.send(42 as never, { to: target }), { code: 'ERR_INVALID_ARG_TYPE' });
  const [a, b] = unixSocketPair({ type: 'seqpacket' });
  await assert.rejects(a.send('x', { to: target }), { code: 'ERR_INVALID_ARG_VALUE', message: /datagram sockets only/ });
  await stillWorks(a, b);
  const [c, d] = unixSocketPair({ type: 'stream' });
  await assert.rejects(c.send('', { fds: [0] }), { code: 'ERR_INVALID_ARG_VALUE', message: /at least one byte/ });
  await stillWorks(c, d);
  await Promise.all([a, b, c, d].map((s) => s.close()));
});

test('destroy at any time: queued sends fail with ERR_INTERPROCESS_CLOSED, receive ends, later calls fail clearly', async () => {
  const [a, b] = unixSocketPair({ type: 'datagram' });
  // Fill the kernel's buffer so that sends queue in JS.
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < 2000; i++) pending.push(a.send(Buffer.alloc(1024)));
  await sleep(20);
  assert.ok(a.sendQueueLength > 0, 'some sends are waiting for room');
  const receiving = a.receive();
  const events: string[] = [];
  a.on('error', (e) => events.push(`error ${(e as { code?: string }).code}`));
  a.on('close', () => events.push('close'));
  const boom = new InterprocessError('EBOOM', 'boom');
  assert.equal(a.destroy(boom), a);
  assert.equal(a.closed, true, 'destroy() is synchronous');
  const results = await Promise.allSettled(pending);
  const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
  assert.ok(failed.length > 0 && failed.length < 2000);
  assert.ok(failed.every((r) => r.reason.code === 'ERR_INTERPROCESS_CLOSED'));
  assert.ok(results.findIndex((r) => r.status === 'rejected') === 2000 - failed.length, 'the sent ones resolved first, in order');
  assert.equal(await receiving, null);
  assert.equal(await a.receive(), null);
  await assert.rejects(a.send('x'), { code: 'ERR_INTERPROCESS_CLOSED' });
  assert.throws(() => a.connect('/nowhere'), { code: 'ERR_INTERPROCESS_CLOSED' });
  await a.close(); // after destroy: resolves once 'close' was emitted
  assert.deepEqual(events, ['error EBOOM', 'close'], "destroy(error) emits 'error', then 'close'");
  a.destroy(); // idempotent
  await b.close();
});

test('close() is graceful: it sends everything queued before closing, takes no more, and is memoised', async () => {
  const [a, b] = unixSocketPair({ type: 'datagram' });
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < 2000; i++) pending.push(a.send(Buffer.from(String(i).padStart(1024, '.'))));
  await sleep(20);
  assert.ok(a.sendQueueLength > 0, 'some sends are waiting for room');
  let closeEvents = 0;
  a.on('close', () => closeEvents++);
  const closing = a.close();
  assert.equal(a.close(), closing, 'a second close() returns the same promise');
  assert.equal(a.closed, false, 'still open while its queue is sent');
  await assert.rejects(a.send('late'), { code: 'ERR_INTERPROCESS_CLOSED' });
  for (let i = 0; i < 2000; i++) assert.equal(Number(String((await b.receive())!.data).replace(/\./g, '')), i);
  await closing;
  assert.equal(a.closed, true);
  assert.equal(closeEvents, 1);
  const results = await Promise.allSettled(pending);
  assert.ok(results.every((r) => r.status === 'fulfilled'), 'every send queued before close() was sent');
  await b.close();
});

test('backpressure: sends queue in order while the reader is away, past sendHighWaterMark send() waits (never rejects) and drain() waits for room', async () => {
  const [a, b] = unixSocketPair({ type: 'seqpacket', sendHighWaterMark: 64 });
  const sent: Array<Promise<void>> = [];
  const count = 400;
  for (let i = 0; i < count; i++) sent.push(a.send(Buffer.from(String(i).padStart(8000, '.'))));
  await sleep(20);
  assert.ok(a.sendQueueLength > 64, 'past the mark, sends wait in the queue');
  const drained = a.drain();
  let resolved = false;
  void drained.then(() => (resolved = true));
  await sleep(20);
  assert.equal(resolved, false, 'drain() waits while the reader is away');
  const aborted = new AbortController();
  const gaveUp = a.drain({ signal: aborted.signal });
  aborted.abort();
  await assert.rejects(gaveUp, { name: 'AbortError', code: 'ABORT_ERR' });
  for (let k = 0; k < count; k++) assert.equal(Number(String((await b.receive())!.data).replace(/\./g, '')), k);
  await drained;
  await Promise.all(sent);
  await Promise.all([a.close(), b.close()]);
});

test('names: EADDRINUSE for a live socket, stale files taken over, non-sockets never removed, mode applied, autobind', { timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  for (const type of ['datagram', 'seqpacket'] as const) {
    const socketPath = path.join(dir, `${type}.sock`);
    const open = () => (type === 'datagram' ? bindDatagram(socketPath, { mode: 0o600 }) : listenUnix(socketPath, { type: 'seqpacket', mode: 0o600 }));
    const first = await open();
    assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
    await assert.rejects(open(), { code: 'EADDRINUSE' });
    await first.close();
    assert.equal(fs.existsSync(socketPath), false, 'our socket file went away with the socket');
    // A stale file left by a process that died (Python binds and exits without unlinking).
    const kind = type === 'datagram' ? 'SOCK_DGRAM' : 'SOCK_SEQPACKET';
    execFileSync('python3', ['-c', `import socket,sys; s=socket.socket(socket.AF_UNIX, socket.${kind}); s.bind(sys.argv[1])`, socketPath]);
    assert.ok(fs.statSync(socketPath).isSocket());
    const taken = await open();
    await taken.close();
  }
  fs.writeFileSync(path.join(dir, 'plain'), 'not a socket');
  await assert.rejects(bindDatagram(path.join(dir, 'plain')), { code: 'EADDRINUSE', message: /never removes/ });
  assert.equal(fs.readFileSync(path.join(dir, 'plain'), 'utf8'), 'not a socket');
  const abstract = nsName(uniqueName());
  const live = await bindDatagram(abstract);
  await assert.rejects(bindDatagram(abstract), { code: 'EADDRINUSE' });
  await assert.rejects(bindDatagram(abstract, { mode: 0o600 }), { code: 'ERR_INVALID_ARG_VALUE' });
  await live.close();
  const auto = await bindDatagram(null, { autobind: true });
  assert.equal(auto.localName?.kind, 'namespaced');
  assert.match(String(auto.localName), /^@[0-9a-f]{5}$/);
  assert.equal((await bindDatagram()).localName, null);
  await auto.close();
  await assert.rejects(connectUnix(path.join(dir, 'missing.sock'), { type: 'seqpacket' }), { code: 'ENOENT', message: /Nothing is listening/ });
  await assert.rejects(connectUnix(nsName(uniqueName()), { type: 'seqpacket', wait: true, timeout: 30 }), { code: 'ETIMEDOUT' });
  await assert.rejects(connectUnix(abstract, { type: 'datagram' as never }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(listenUnix(path.join(dir, 'x'.repeat(120)), { type: 'stream' }), { code: 'ENAMETOOLONG' });
});

test('peer credentials on connected sockets of every type, and a clear answer where the kernel keeps none', async (t) => {
  for (const type of ['datagram', 'seqpacket', 'stream'] as const) {
    const [a, b] = unixSocketPair({ type });
    assert.deepEqual(a.peerCredentials(), { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    await b.close();
    await a.close();
    assert.equal(a.peerCredentials().pid, process.pid, 'remembered after close');
  }
  const name = nsName(uniqueName());
  await using listener = await listenUnix(name, { type: 'stream' });
  await using client = await connectUnix(name, { type: 'stream' });
  const accepted = (await listener[Symbol.asyncIterator]().next()).value!;
  t.after(() => accepted.close());
  assert.equal(client.peerCredentials().pid, process.pid);
  assert.equal(accepted.peerCredentials().pid, process.pid);
  await using bound = await bindDatagram(nsName(uniqueName()));
  await using connected = await bindDatagram(null, { connect: bound.localName! });
  assert.throws(() => connected.peerCredentials(), { code: 'ERR_INTERPROCESS_NO_CREDENTIALS', message: /passCredentials/ });
});

test('no descriptor leaks across opening, failing and closing every kind of socket', { timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  const warm = await bindDatagram(nsName(uniqueName()));
  await warm.close();
  await sleep(10);
  const before = openFds();
  for (let i = 0; i < 10; i++) {
    const name = nsName(uniqueName());
    const listener = await listenUnix(name, { type: 'seqpacket' });
    const client = await connectUnix(name, { type: 'seqpacket' });
    const conn = (await listener[Symbol.asyncIterator]().next()).value!;
    await client.send('x', { fds: [0] });
    const message = (await conn.receive())!;
    message.fds[0]!.close();
    await assert.rejects(listenUnix(name, { type: 'seqpacket' }), { code: 'EADDRINUSE' });
    await Promise.all([client.close(), conn.close(), listener.close()]);
    const file = path.join(dir, `d${i}.sock`);
    const d = await bindDatagram(file);
    await assert.rejects(bindDatagram(file), { code: 'EADDRINUSE' });
    await d.close();
    const pair = unixSocketPair({ type: 'stream' });
    await Promise.all(pair.map((s) => s.close()));
    await assert.rejects(connectUnix(path.join(dir, 'missing.sock'), { type: 'stream' }), { code: 'ENOENT' });
  }
  await sleep(20);
  assert.equal(openFds(), before);
});

test('messages read ahead for receive() go to a message listener added later, in order', async () => {
  const [a, b] = unixSocketPair({ type: 'datagram' });
  for (let i = 0; i < 5; i++) await a.send(String(i));
  assert.equal(String((await b.receive())!.data), '0'); // reads ahead the rest
  await sleep(10);
  const seen: string[] = [];
  await new Promise<void>((resolve) => {
    b.on('message', (m) => {
      seen.push(String(m.data));
      if (seen.length === 5) resolve();
    });
    void a.send('5');
  });
  assert.deepEqual(seen, ['1', '2', '3', '4', '5']);
  await Promise.all([a.close(), b.close()]);
});

test('an unconnected sender to a receiver that is not reading: sends wait (no busy loop), then all arrive in order', { timeout: 30_000 }, async () => {
  const receiverName = nsName(uniqueName('slow'));
  const receiver = await bindDatagram(receiverName);
  const sender = await bindDatagram();
  // Linux queues 10 datagrams for an unconnected receiver; the rest wait in our queue.
  const sent = Array.from({ length: 300 }, (_, i) => sender.send(String(i), { to: receiverName }));
  await sleep(50);
  assert.ok(sender.sendQueueLength > 0, 'sends are waiting for the receiver');
  const cpuBefore = process.cpuUsage();
  await sleep(200);
  const cpu = process.cpuUsage(cpuBefore);
  assert.ok(cpu.user + cpu.system < 150_000, `waiting costs little CPU (${((cpu.user + cpu.system) / 1000).toFixed(0)} ms in 200 ms)`);
  for (let i = 0; i < 300; i++) assert.equal(String((await receiver.receive())!.data), String(i));
  await Promise.all(sent);
  await Promise.all([sender.close(), receiver.close()]);
});

test('a listener out of descriptors (EMFILE) reports it, pauses instead of spinning, and accepts once there are some again', { timeout: 30_000 }, () => {
  const fixture = fileURLToPath(new URL('../fixtures/unix-emfile.js', import.meta.url));
  const out = execFileSync('sh', ['-c', 'ulimit -n 256 && exec "$0" "$1"', process.execPath, fixture], { encoding: 'utf8', timeout: 20_000 });
  const report = JSON.parse(out) as { errors: number; code: string; cpuMs: number; accepted: string };
  assert.equal(report.code, 'EMFILE');
  assert.ok(report.errors >= 1 && report.errors <= 20, `a few errors in 500 ms, not a flood (${report.errors})`);
  assert.equal(report.accepted, 'seqpacket');
});
