// The 1.0 surface of UnixSocket (issue 15): names, defaults, closed/name properties, peer
// credentials after close, signals, leaving a loop early, disposal of received descriptors, and
// the receive marks spelled the same in C and TS.
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { bindDatagram, connectUnix, fsName, listenUnix, nsName, unixSocketPair } from 'interprocess';
import { requireNative } from '#internal/native/addon.js';
import { MARKS } from '#internal/unix-socket/marks.js';
import { openFds, scratchDir, uniqueName } from '../helpers.js';

test('the receive marks are the same numbers in C (unixSockets.MARKS) and TS', () => {
  assert.deepEqual({ ...requireNative('test').unixSockets.MARKS }, { ...MARKS });
});

test('defaults: unixSocketPair() and connectUnix(name) make stream sockets; type is an option', async (t) => {
  const [a, b] = unixSocketPair();
  assert.equal(a.type, 'stream');
  const [c, d] = unixSocketPair({ type: 'seqpacket' });
  assert.equal(c.type, 'seqpacket');
  const name = nsName(uniqueName());
  const listener = await listenUnix(name);
  t.after(() => listener.close());
  const client = await connectUnix(name);
  assert.equal(client.type, 'stream');
  assert.throws(() => unixSocketPair({ type: 'bogus' as never }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(connectUnix(name, { type: 'datagram' as never }), { code: 'ERR_INVALID_ARG_VALUE' });
  for (const s of [a, b, c, d, client]) s.destroy();
});

test('.name: the name connected to, the listener\'s for an accepted connection, the bound one; null for pairs. closed flips on close', async (t) => {
  const dir = scratchDir(t);
  const name = fsName(path.join(dir, 'named.sock'));
  const listener = await listenUnix(name, { type: 'seqpacket' });
  t.after(() => listener.close());
  const accepted = listener[Symbol.asyncIterator]().next();
  const client = await connectUnix(name, { type: 'seqpacket' });
  const server = (await accepted).value!;
  assert.equal(String(client.name), String(name));
  assert.equal(String(server.name), String(name));
  const [a, b] = unixSocketPair();
  assert.equal(a.name, null);
  const bound = await bindDatagram(path.join(dir, 'dgram.sock'));
  assert.equal(String(bound.name), path.join(dir, 'dgram.sock'));
  const unbound = await bindDatagram(null, { connect: bound.localName! });
  assert.equal(String(unbound.name), path.join(dir, 'dgram.sock'), 'an unbound datagram socket: the name its connect gave');
  assert.equal(client.closed, false);
  await client.close();
  assert.equal(client.closed, true);
  for (const s of [server, a, b, bound, unbound]) await s.close();
});

test('peerCredentials() answers after close without having been asked before; a socket that never had a peer gets a typed error', async () => {
  const [a, b] = unixSocketPair();
  await a.close();
  const credentials = a.peerCredentials();
  assert.equal(credentials.pid, process.pid);
  assert.equal(credentials.uid, process.getuid!());
  const lonely = await bindDatagram(nsName(uniqueName()));
  assert.throws(() => lonely.peerCredentials(), { code: 'ERR_INTERPROCESS_NO_CREDENTIALS', message: /never had a peer/ });
  await lonely.close();
  assert.throws(() => lonely.peerCredentials(), { code: 'ERR_INTERPROCESS_NO_CREDENTIALS' });
  await b.close();
});

test('leaving a for await loop early closes the socket; iterator({ closeOnReturn: false }) leaves it open with nothing lost', async () => {
  const [a, b] = unixSocketPair({ type: 'seqpacket' });
  for (const m of ['one', 'two', 'three', 'four']) await a.send(m);
  for await (const message of b.iterator({ closeOnReturn: false })) {
    assert.equal(String(message.data), 'one');
    break;
  }
  assert.equal(b.closed, false);
  assert.equal(String((await b.receive())!.data), 'two', 'the next receive() gets the next message');
  for await (const message of b.iterator({ closeOnReturn: false })) {
    assert.equal(String(message.data), 'three');
    break;
  }
  for await (const message of b) {
    assert.equal(String(message.data), 'four');
    break;
  }
  assert.equal(b.closed, true, 'a plain loop left early closes the socket (as a Readable)');
  await assert.rejects(a.send('x').then(() => sleep(10)).then(() => a.send('y')), { code: 'EPIPE' });
  a.destroy();
  const [c, d] = unixSocketPair({ type: 'seqpacket' });
  await c.send('m');
  await assert.rejects(
    (async () => {
      for await (const message of d) {
        assert.ok(message);
        throw new Error('thrown in the loop');
      }
    })(),
    /thrown in the loop/,
  );
  assert.equal(d.closed, true, 'a throw leaves the loop early too');
  c.destroy();
});

test('signals: receive() and send() give up with an AbortError, nothing is lost or sent by halves, the socket goes on', async () => {
  const [a, b] = unixSocketPair({ type: 'datagram' });
  const controller = new AbortController();
  const waiting = b.receive({ signal: controller.signal });
  controller.abort();
  await assert.rejects(waiting, { name: 'AbortError', code: 'ABORT_ERR' });
  await assert.rejects(b.receive({ signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  await a.send('after the abort');
  assert.equal(String((await b.receive())!.data), 'after the abort', 'the aborted receive took nothing');

  await assert.rejects(a.send('never', { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  // Fill the kernel's buffer, then queue marked messages and cancel some of them.
  const fill: Array<Promise<void>> = [];
  for (let i = 0; i < 2000; i++) fill.push(a.send(Buffer.alloc(1024)));
  await sleep(20);
  assert.ok(a.sendQueueLength > 0);
  const cancel = new AbortController();
  const kept = a.send('kept 1');
  const dropped = a.send('dropped', { signal: cancel.signal });
  const kept2 = a.send('kept 2', { signal: new AbortController().signal });
  cancel.abort();
  await assert.rejects(dropped, { code: 'ABORT_ERR' });
  const texts: string[] = [];
  while (texts.length < 2) {
    const message = (await b.receive())!;
    if (message.data.length !== 1024) texts.push(String(message.data));
  }
  assert.deepEqual(texts, ['kept 1', 'kept 2']);
  await Promise.all([kept, kept2, ...fill]);
  await assert.rejects(bindDatagram(nsName(uniqueName()), { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  await Promise.all([a.close(), b.close()]);
});

test('bindDatagram() aborted leaves no socket file; a received descriptor is closed by Symbol.dispose', async (t) => {
  const dir = scratchDir(t);
  const file = path.join(dir, 'never.sock');
  await assert.rejects(bindDatagram(file, { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  assert.equal(fs.existsSync(file), false);
  const before = openFds();
  const [a, b] = unixSocketPair({ type: 'seqpacket' });
  await a.send('fd', { fds: [0] });
  const message = (await b.receive())!;
  {
    const descriptor = message.fds[0]!;
    descriptor[Symbol.dispose]();
    assert.throws(() => descriptor.fd, { code: 'ERR_INTERPROCESS_DESCRIPTOR_TAKEN' });
  }
  a.destroy();
  b.destroy();
  await sleep(10);
  assert.equal(openFds(), before);
});
