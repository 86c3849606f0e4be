// A peer SIGKILLed on every kind of connection: we notice within a bound, with the end or a typed
// error, every pending call settles, and nothing of ours leaks. The peer is a real process
// (test/fixtures/fault-peer.ts) that is killed with what it holds still open.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Channel, type LocalSocket, type UnixSocket, connectRpc, createFifo, listen, listenUnix, nsName, openFifoReader, openFifoWriter, pipe, unixSocketPair,
} from 'interprocess';
import { type Fixture, scratchDir, spawnFixture, uniqueName } from '../helpers.js';
import { baseline, fdsBack, figure, typed } from './fault.js';

/** Time to detect a dead peer: milliseconds in practice; this bound only catches a hang. */
const DETECT_LIMIT = 10_000;

/** Kills the fixture and resolves with the milliseconds until `detected` settles. */
async function killAndTime<T>(fixture: Fixture, detected: () => Promise<T>): Promise<{ ms: number; outcome: T }> {
  const start = performance.now();
  fixture.child.kill('SIGKILL');
  const outcome = await Promise.race([detected(), sleep(DETECT_LIMIT, undefined, { ref: false }).then(() => assert.fail(`not detected within ${DETECT_LIMIT} ms`))]);
  return { ms: performance.now() - start, outcome };
}

async function checkNoLeak(before: number, what: string): Promise<void> {
  const back = await fdsBack(before);
  assert.equal(back.fds, before, `${what}: descriptors back to baseline`);
}

test('local socket: the peer killed, our side ends, nothing leaks', { timeout: 60_000 }, async (t) => {
  const before = await baseline(t);
  const raw = uniqueName('kill-local');
  const listener = await listen(nsName(raw));
  const peer = spawnFixture(t, 'fault-peer', ['local', raw]);
  const [conn] = (await once(listener, 'connection')) as [LocalSocket];
  await peer.next('ready');
  const errors: Error[] = [];
  conn.on('error', (e) => errors.push(e));
  conn.resume();
  const { ms } = await killAndTime(peer, () => once(conn, 'close'));
  figure(`local socket: peer SIGKILL detected in ${ms.toFixed(1)} ms`);
  assert.ok(errors.every((e) => (e as NodeJS.ErrnoException).code === 'ECONNRESET'), errors.map(String).join());
  await listener.close();
  await checkNoLeak(before, 'local socket');
});

for (const type of ['stream', 'seqpacket'] as const) {
  test(`unix ${type}: the peer killed, receive() ends (or a typed ECONNRESET), nothing leaks`, { timeout: 60_000 }, async (t) => {
    const before = await baseline(t);
    const raw = uniqueName(`kill-${type}`);
    const listener = await listenUnix(nsName(raw), { type });
    const peer = spawnFixture(t, 'fault-peer', ['unix', type, raw]);
    const conn = (await listener[Symbol.asyncIterator]().next()).value as UnixSocket;
    await peer.next('ready');
    const pending = conn.receive();
    const { ms, outcome } = await killAndTime(peer, () => pending.then((m) => m, (e: unknown) => e));
    figure(`unix ${type}: peer SIGKILL detected in ${ms.toFixed(1)} ms (${outcome === null ? 'end' : String((outcome as { code?: string }).code)})`);
    assert.ok(outcome === null || (typed(outcome) && outcome.code === 'ECONNRESET'), `the end or ECONNRESET, got ${String(outcome)}`);
    assert.equal(await conn.receive(), null, 'later receives see the end');
    await conn.close();
    await listener.close();
    await checkNoLeak(before, `unix ${type}`);
  });
}

test('unix datagram: the connected peer killed, the next send fails with a typed ECONNREFUSED, nothing leaks', { timeout: 60_000 }, async (t) => {
  const before = await baseline(t);
  const [ours, theirs] = unixSocketPair({ type: 'datagram' });
  const peer = spawnFixture(t, 'fault-peer', ['hold'], process.env, { extraFds: [theirs.fd] });
  await theirs.close();
  await peer.next('ready');
  await ours.send('before'); // the peer is there
  const { ms, outcome } = await killAndTime(peer, async () => {
    for (;;) {
      const error = await ours.send('after').then(() => null, (e: unknown) => e);
      if (error) return error;
      await sleep(1);
    }
  });
  figure(`unix datagram: peer SIGKILL detected by the next send in ${ms.toFixed(1)} ms (${String((outcome as { code?: string }).code)})`);
  assert.ok(typed(outcome) && outcome.code === 'ECONNREFUSED', `ECONNREFUSED, got ${String(outcome)}`);
  const receiving = ours.receive();
  await ours.close();
  assert.equal(await receiving, null, 'a pending receive settles on close');
  await checkNoLeak(before, 'unix datagram');
});

test('pipe: the writer killed, the receiver ends; the reader killed, the sender fails with EPIPE; nothing leaks', { timeout: 60_000 }, async (t) => {
  const before = await baseline(t);
  {
    const { sender, receiver } = pipe();
    const peer = spawnFixture(t, 'fault-peer', ['hold'], process.env, { extraFds: [sender.fd] });
    sender.destroy();
    await peer.next('ready');
    receiver.resume();
    const { ms } = await killAndTime(peer, () => once(receiver, 'end'));
    figure(`pipe: writer SIGKILL seen as the end in ${ms.toFixed(1)} ms`);
  }
  {
    const { sender, receiver } = pipe();
    const peer = spawnFixture(t, 'fault-peer', ['hold'], process.env, { extraFds: [receiver.fd] });
    receiver.destroy();
    await peer.next('ready');
    const failed = new Promise<NodeJS.ErrnoException>((resolve) => sender.once('error', resolve));
    const { ms, outcome } = await killAndTime(peer, async () => {
      while (!sender.destroyed) {
        if (!sender.write(Buffer.alloc(65536))) await Promise.race([once(sender, 'drain'), failed]);
      }
      return failed;
    });
    figure(`pipe: reader SIGKILL seen by the writer in ${ms.toFixed(1)} ms (${outcome.code})`);
    assert.equal(outcome.code, 'EPIPE');
  }
  await checkNoLeak(before, 'pipe');
});

test('FIFO: the writer killed, the reader ends; the reader killed, the writer fails with EPIPE; nothing leaks', { skip: process.platform === 'win32' && 'no FIFOs on Windows', timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t);
  const before = await baseline(t);
  {
    const fifo = path.join(dir, 'to-us');
    await createFifo(fifo);
    const reader = openFifoReader(fifo);
    const peer = spawnFixture(t, 'fault-peer', ['fifo-writer', fifo]);
    await peer.next('ready');
    const chunks: Buffer[] = [];
    reader.on('data', (c: Buffer) => chunks.push(c));
    const { ms } = await killAndTime(peer, () => once(reader, 'end'));
    figure(`FIFO: writer SIGKILL seen as the end in ${ms.toFixed(1)} ms`);
    assert.equal(String(Buffer.concat(chunks)), 'hello', 'what it wrote before dying arrives');
  }
  {
    const fifo = path.join(dir, 'from-us');
    await createFifo(fifo);
    const peer = spawnFixture(t, 'fault-peer', ['fifo-reader', fifo]);
    await peer.next('ready');
    const writer = await openFifoWriter(fifo, { wait: true, timeout: 10_000 });
    const failed = new Promise<NodeJS.ErrnoException>((resolve) => writer.once('error', resolve));
    const { ms, outcome } = await killAndTime(peer, async () => {
      while (!writer.destroyed) {
        if (!writer.write(Buffer.alloc(65536))) await Promise.race([once(writer, 'drain'), failed]);
      }
      return failed;
    });
    figure(`FIFO: reader SIGKILL seen by the writer in ${ms.toFixed(1)} ms (${outcome.code})`);
    assert.equal(outcome.code, 'EPIPE');
  }
  await checkNoLeak(before, 'FIFO');
});

test('channel: the peer killed, the channel closes (the end or a typed error), nothing leaks', { timeout: 60_000 }, async (t) => {
  const before = await baseline(t);
  const raw = uniqueName('kill-channel');
  const listener = await listen(nsName(raw));
  const peer = spawnFixture(t, 'fault-peer', ['channel', raw]);
  const [conn] = (await once(listener, 'connection')) as [LocalSocket];
  const channel = new Channel<string>(conn);
  t.after(() => {
    channel.destroy();
    return listener.close();
  });
  const iterator = channel[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).value, 'hello');
  await peer.next('ready');
  const next = iterator.next().then((r) => r, (e: unknown) => e);
  const { ms, outcome } = await killAndTime(peer, async () => {
    const result = await next;
    if (!channel.closed) await once(channel, 'close'); // the peer ended first: ours ends after its queue
    return result;
  });
  const error = channel.error;
  figure(`channel: peer SIGKILL detected in ${ms.toFixed(1)} ms (${error ? error.code : 'end'})`);
  assert.ok(error === null ? (outcome as IteratorResult<string>).done === true : typed(outcome), `the end or a typed error, got ${String(outcome)}`);
  assert.equal(channel.closed, true);
  await assert.rejects(channel.send('after'), (e) => typed(e));
  await listener.close();
  await checkNoLeak(before, 'channel');
});

test('RPC: the server killed with 100 requests pending, all 100 reject with a typed error at once, nothing leaks', { timeout: 60_000 }, async (t) => {
  const before = await baseline(t);
  const raw = uniqueName('kill-rpc');
  const server = spawnFixture(t, 'fault-peer', ['rpc', raw, '100']);
  await server.next('listening');
  const rpc = await connectRpc(nsName(raw));
  const pending = Array.from({ length: 100 }, (_, i) => rpc.request('hang', i).then(() => assert.fail('a reply from a dead server'), (e: unknown) => e));
  await server.next('ready'); // the server has all 100
  const { ms, outcome } = await killAndTime(server, () => Promise.all(pending));
  const codes = [...new Set(outcome.map((e) => (e as { code?: string }).code))];
  figure(`RPC: server SIGKILL with 100 requests pending: all rejected in ${ms.toFixed(1)} ms (${codes.join(', ')})`);
  assert.ok(outcome.every(typed), 'every rejection is an InterprocessError');
  await assert.rejects(rpc.request('hang'), (e) => typed(e));
  await rpc.close();
  await checkNoLeak(before, 'RPC');
});
