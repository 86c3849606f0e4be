// RpcServer.broadcast() with a client that never reads among clients that do: the broadcaster is
// never held by it, the slow client alone is closed past maxBufferedBytes, memory stays bounded.
// Channel#bufferedBytes, which it reads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Channel, type InterprocessError, type RpcChannel, nsName, serveRpc, unixSocketPair } from 'interprocess';
import { sanitizerScale, spawnFixture, uniqueName, wine } from '../helpers.js';

const MiB = 1024 * 1024;

test('a client that never reads, among three that do: broadcast() waits for it at most slowClientTimeout, then closes it; the others get every event', { timeout: 120_000 * (wine ? 3 : 1) }, async (t) => {
  const name = uniqueName('broadcast');
  await using server = await serveRpc<{ n: number; pad: string }>(nsName(name), { maxBufferedBytes: 2 * MiB, slowClientTimeout: 300 });
  const closings: Array<Promise<InterprocessError | undefined>> = [];
  server.on('connection', (rpc: RpcChannel<{ n: number; pad: string }>) => {
    closings.push(new Promise((resolve) => rpc.once('close', resolve)));
  });
  const clients = spawnFixture(t, 'broadcast-clients', [name, '3']);
  await clients.next('ready');
  while (server.channels.size < 4) await sleep(10);

  const events = 400; // 64 KiB each: 25 MiB to every client, far past what the kernel buffers
  const readersAt = async (count: number): Promise<{ events: number[]; bad: number }> => {
    for (;;) {
      clients.send({ type: 'report' });
      const report = await clients.next<{ events: number[]; bad: number }>('report');
      if (report.events.every((n) => n >= count)) return report;
      await sleep(5);
    }
  };
  const pad = 'x'.repeat(64 * 1024);
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const reached: number[] = [];
  let slowest = 0;
  for (let n = 0; n < events; n++) {
    const started = performance.now();
    reached.push(await server.broadcast('news', { n, pad }));
    slowest = Math.max(slowest, performance.now() - started);
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    // The readers keep up: every 16 events (1 MiB, under the bound) they have read all so far,
    // however slow the platform; the silent one cannot.
    if (n % 16 === 15) await readersAt(n + 1);
  }
  t.diagnostic(`reached: first ${reached[0]}, last ${reached.at(-1)}; slowest broadcast ${slowest.toFixed(1)} ms; RSS +${((rssPeak - rssBefore) / MiB).toFixed(0)} MiB`);
  assert.equal(reached[0], 4, 'at first every client is counted');
  assert.equal(reached.at(-1), 3, 'in the end the silent client is not');
  const cutAt = reached.indexOf(3);
  assert.ok(reached.slice(cutAt).every((count) => count === 3) && reached.slice(0, cutAt).every((count) => count === 4), 'counted until closed, never after');
  // 2 MiB of queue plus the kernel's buffers: well under the 25 MiB it was sent.
  assert.ok(cutAt * pad.length < 16 * MiB, `closed after ${cutAt} events (${((cutAt * pad.length) / MiB).toFixed(1)} MiB)`);
  assert.ok(rssPeak - rssBefore < 96 * MiB * sanitizerScale, `memory stayed bounded (RSS +${((rssPeak - rssBefore) / MiB).toFixed(0)} MiB)`);

  // The silent client's channel ended with the slow-consumer error; the readers' are open.
  const ended = await Promise.race([Promise.any(closings), sleep(10_000).then(() => 'none')]);
  assert.equal((ended as InterprocessError | undefined)?.code, 'ERR_INTERPROCESS_SLOW_CONSUMER');
  assert.match((ended as InterprocessError).message, /maxBufferedBytes \(2097152\)/);
  assert.ok(slowest < 5_000 * (wine ? 3 : 1), `no broadcast waited much past slowClientTimeout: ${slowest.toFixed(0)} ms`);
  assert.equal(server.channels.size, 3);

  // Every reader got every event, in order, intact.
  const { events: counts, bad } = await readersAt(events);
  assert.deepEqual({ counts, bad }, { counts: [events, events, events], bad: 0 });
  // The silent client, reading at last: what reached it, then the end (the server closed it).
  clients.send({ type: 'read-silent' });
  const silent = await clients.next<{ bytes: number; ended: boolean }>('silent');
  assert.equal(silent.ended, true, 'the server closed the silent connection');
  assert.ok(silent.bytes < events * pad.length, `it got part of the broadcasts (${silent.bytes} bytes)`);
  clients.send({ type: 'exit' });
  await clients.exited;
});

test('a burst of broadcasts that never yields, to three clients that read: paced by them, none closed, every event arrives', { timeout: 120_000 * (wine ? 3 : 1) }, async (t) => {
  const name = uniqueName('burst');
  await using server = await serveRpc<{ n: number; pad: string }>(nsName(name));
  const clients = spawnFixture(t, 'broadcast-clients', [name, '3', 'none']);
  await clients.next('ready');
  while (server.channels.size !== 3) await sleep(10);
  const pad = 'y'.repeat(100 * 1024);
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  // 120 x 100 KiB (12 MiB per client, past the 8 MiB maxBufferedBytes), without a turn of the loop
  // between broadcasts but what broadcast() itself waits for.
  for (let n = 0; n < 120; n++) {
    assert.equal(await server.broadcast('news', { n, pad }), 3, `broadcast ${n} queued on every client`);
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }
  let report = { events: [0], bad: -1 };
  for (let i = 0; i < 1000 && !report.events.every((count) => count === 120); i++) {
    await sleep(20);
    clients.send({ type: 'report' });
    ({ events: report.events, bad: report.bad } = await clients.next<{ events: number[]; bad: number }>('report'));
  }
  assert.deepEqual(report, { events: [120, 120, 120], bad: 0 });
  assert.equal(server.channels.size, 3, 'no reading client was closed');
  t.diagnostic(`RSS +${((rssPeak - rssBefore) / MiB).toFixed(0)} MiB`);
  assert.ok(rssPeak - rssBefore < 128 * MiB * sanitizerScale, 'memory stayed bounded');
  clients.send({ type: 'exit' });
  await clients.exited;
});

test('a Buffer body (raw codec) is the caller\'s again once broadcast() resolves: refilled at once, every client still gets what was sent', { timeout: 30_000 * (wine ? 3 : 1) }, async () => {
  const name = nsName(uniqueName('broadcast-raw'));
  await using server = await serveRpc<Buffer>(name, { codec: 'raw' });
  const { connectRpc } = await import('interprocess');
  const client = await connectRpc<Buffer>(name, { codec: 'raw' });
  const got: number[] = [];
  client.on('event', (_event, body) => got.push(body![0]!, body![body!.length - 1]!));
  while (server.channels.size < 1) await sleep(10);
  const frame = Buffer.alloc(64 * 1024);
  for (let i = 0; i < 5; i++) {
    frame.fill(i);
    assert.equal(await server.broadcast('frame', frame), 1);
  }
  while (got.length < 10) await sleep(10);
  assert.deepEqual(got, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
  await client.close();
});

test('broadcast() arguments: a bad event name, an oversized body or one the codec cannot encode rejects and queues nothing; maxBufferedBytes is checked before listening', { timeout: 30_000 * (wine ? 3 : 1) }, async () => {
  const name = nsName(uniqueName('broadcast-args'));
  for (const maxBufferedBytes of [-1, Number.NaN, '1' as unknown as number]) {
    await assert.rejects(serveRpc(name, { maxBufferedBytes }), { code: 'ERR_OUT_OF_RANGE' });
    await assert.rejects(serveRpc(name, { slowClientTimeout: maxBufferedBytes }), { code: 'ERR_OUT_OF_RANGE' });
  }
  await using server = await serveRpc(name, { maxMessageSize: 1000 });
  const { connectRpc } = await import('interprocess');
  const client = await connectRpc(name, { maxMessageSize: 1000 });
  const got: unknown[] = [];
  client.on('event', (event, body) => got.push([event, body]));
  while (server.channels.size < 1) await sleep(10);
  await assert.rejects(server.broadcast(7 as unknown as string, 1), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(server.broadcast('n'.repeat(70_000), 1), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(server.broadcast('big', 'y'.repeat(2000)), { code: 'ERR_INTERPROCESS_FRAME_TOO_LARGE' });
  await assert.rejects(server.broadcast('cycle', { self: globalThis } as unknown as number), (error: InterprocessError) => typeof error.code === 'string');
  assert.equal(await server.broadcast('ok', 7), 1);
  assert.equal(await server.broadcast('empty'), 1);
  while (got.length < 2) await sleep(10);
  assert.deepEqual(got, [['ok', 7], ['empty', undefined]], 'only the events that could be sent');
  await client.close();
});

test('Channel#bufferedBytes: what waits for a peer that does not read, and 0 once it has', { skip: process.platform === 'win32' && 'unixSocketPair is Unix (the count itself is the same code on every stream)', timeout: 30_000 }, async () => {
  const [a, b] = unixSocketPair();
  const sender = new Channel<Buffer>(a, { codec: 'raw' });
  const sends: Array<Promise<void>> = [];
  for (let i = 0; i < 64; i++) sends.push(sender.send(Buffer.alloc(64 * 1024, i)));
  assert.equal(sender.bufferedBytes, 64 * (64 * 1024 + 4), 'every frame counted, header included, before the tick ends');
  await sleep(50);
  const held = sender.bufferedBytes;
  assert.ok(held > 0 && held < 64 * (64 * 1024 + 4), `the kernel took some, the rest waits (${held} bytes)`);
  const receiver = new Channel<Buffer>(b, { codec: 'raw' });
  let n = 0;
  for await (const body of receiver.iterator({ closeOnReturn: false })) {
    assert.equal(body[0], n & 255);
    if (++n === 64) break;
  }
  await Promise.all(sends);
  assert.equal(sender.bufferedBytes, 0);
  await sender.close();
  await receiver.close();
});
