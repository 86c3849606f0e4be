/**
 * Channel#reserve(): a message filled in place, in the peer's ring on the shared-memory transport
 * (a Buffer elsewhere), holding its place in the order; commit, cancel, failures.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Channel, type InterprocessError, unixSocketPair } from '#internal/index.js';
import { listenUnix } from '#internal/index.js';
import { openFds, spawnFixture, testSocketPath } from '../helpers.js';
import { countFor, message } from './messages.js';

const skip = process.platform === 'win32' && 'shared memory and Unix socket pairs are Unix (Windows refuses the transport: shm.test.ts)';

function pair(transport: 'shared-memory' | 'stream', ringSize = 65536): [Channel<Buffer>, Channel<Buffer>] {
  const [a, b] = unixSocketPair();
  return [new Channel<Buffer>(a, { transport, codec: 'raw', ringSize }), new Channel<Buffer>(b, { transport, codec: 'raw', ringSize })];
}

async function take(channel: Channel<Buffer>, n: number): Promise<string[]> {
  const got: string[] = [];
  for await (const body of channel.iterator({ closeOnReturn: false })) {
    got.push(body.length > 16 ? `${String.fromCharCode(body[0]!)}*${body.length}` : body.toString());
    if (got.length === n) break;
  }
  return got;
}

for (const transport of ['shared-memory', 'stream'] as const) {
  test(`${transport}: close() with a reservation held, and one waiting behind it: the held one is cancelled (commit() rejects), the waiting one rejects, what was sent arrives, close() resolves`, { skip, timeout: 30_000 }, async () => {
    const [left, right] = pair(transport);
    await left.send(Buffer.from('hello'));
    assert.deepEqual(await take(right, 1), ['hello']);
    const held = await left.reserve(16);
    const waiting = left.reserve(16).then(() => null, (error: InterprocessError) => error);
    const sent = left.send(Buffer.from('after')); // waits behind the reservations
    held.data.fill(66);
    await left.close(); // a forgotten reservation cannot hold it
    assert.equal((await waiting)?.code, 'ERR_INTERPROCESS_CLOSED');
    await assert.rejects(held.commit(), { code: 'ERR_INTERPROCESS_CLOSED' });
    await sent;
    assert.deepEqual(await take(right, 1), ['after'], 'the send after them still went, and nothing of theirs');
    await right.close();
  });

  test(`${transport}: a reservation holds its place in the order; commit(length) sends that much, cancel() nothing; a message past half the ring is a Buffer`, { skip }, async () => {
    const [left, right] = pair(transport);
    await left.send(Buffer.from('hello')); // the peer's hello has come: its ring's size is known
    assert.deepEqual(await take(right, 1), ['hello']);
    void left.send(Buffer.from('A'));
    const reserving = left.reserve(5);
    const after = left.send(Buffer.from('C')); // waits behind the reservation
    const reservation = await reserving;
    assert.equal(Buffer.isBuffer(reservation.data), transport === 'stream', 'in the ring on shared memory, a Buffer elsewhere');
    assert.equal(reservation.data.byteLength, 5);
    let sentC = false;
    void after.then(() => (sentC = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(sentC, false, 'the send after it waits for it');
    reservation.data.set(Buffer.from('BBBBB'));
    await reservation.commit(3);
    await after;
    const cancelled = await left.reserve(4);
    cancelled.data.fill(63);
    cancelled.cancel();
    const big = await left.reserve(40_000); // over half of a 64 KiB ring
    assert.ok(Buffer.isBuffer(big.data));
    big.data.fill(120);
    await big.commit();
    await left.send(Buffer.from('D'));
    assert.deepEqual(await take(right, 5), ['A', 'BBB', 'C', 'x*40000', 'D']);
    assert.throws(() => reservation.commit(), { code: 'ERR_INVALID_STATE' });
    assert.throws(() => cancelled.cancel(), { code: 'ERR_INVALID_STATE' });
    assert.equal(reservation.data.byteLength, 0, 'committed: data is empty (the bytes are the peer\'s again)');
    assert.equal(cancelled.data.byteLength, 0, 'cancelled: data is empty');
    await left.close();
    await right.close();
  });

  test(`${transport}: bad sizes and lengths are typed errors; the channel goes on`, { skip }, async () => {
    const [left, right] = pair(transport);
    for (const size of [-1, 1.5, Number.NaN]) await assert.rejects(left.reserve(size), { code: 'ERR_OUT_OF_RANGE' });
    await assert.rejects(left.reserve(17 << 20), { code: 'ERR_INTERPROCESS_FRAME_TOO_LARGE' });
    const reservation = await left.reserve(8);
    assert.throws(() => reservation.commit(9), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => reservation.commit(-1), { code: 'ERR_OUT_OF_RANGE' });
    reservation.data.set(Buffer.from('still ok'));
    await reservation.commit();
    assert.deepEqual(await take(right, 1), ['still ok']);
    await left.close();
    await right.close();
  });

  test(`${transport}: destroyed while a reservation waits for room, or is held: reserve() and commit() reject typed, close() does not hang`, { skip, timeout: 30_000 }, async () => {
    await new Promise((resolve) => setTimeout(resolve, 50)); // the earlier tests' descriptors closed
    const fdsBefore = openFds();
    // Nobody takes the peer's messages: past its highWaterMark it stops reading, the ring (or the
    // socket) fills, and the next reservation waits for room.
    const [left, right] = pair(transport, 16384);
    const filling: Array<Promise<unknown>> = [];
    for (let i = 0; i < 400; i++) filling.push(left.send(Buffer.alloc(4000, i)).catch((error: unknown) => error));
    const waiting = left.reserve(1000);
    let settled = false;
    void waiting.then(() => (settled = true), () => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(settled, false, 'it waits behind what the peer has not read');
    left.destroy();
    await assert.rejects(waiting, (error: InterprocessError) => error.code === 'ERR_INTERPROCESS_CLOSED');
    await Promise.all(filling);
    right.destroy();

    const [a, b] = pair(transport);
    await a.send(Buffer.from('hello'));
    await take(b, 1);
    const held = await a.reserve(10);
    const closing = a.close(); // waits for the reservation
    a.destroy();
    await closing;
    await assert.rejects(held.commit(), (error: InterprocessError) => error.code === 'ERR_INTERPROCESS_CLOSED');
    b.destroy();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(openFds(), fdsBefore, 'no descriptor left open');
  });
}

test('between processes: every other message of 0 B to 8 MiB reserved and filled in place, in order and intact', { skip, timeout: 120_000 }, async (t) => {
  const socketPath = testSocketPath(t, 'r');
  const listener = await listenUnix(socketPath);
  const count = countFor(24 << 20);
  const peer = spawnFixture(t, 'shm-peer', [socketPath, 'reserve', String(count)]);
  const socket = (await listener[Symbol.asyncIterator]().next()).value;
  await listener.close();
  const channel = new Channel<Buffer>(socket, { transport: 'shared-memory', codec: 'raw', maxMessageSize: 16 << 20, ringSize: 1 << 20 });
  let index = 0;
  for await (const body of channel) {
    assert.ok(body.equals(message(index)), `message ${index} (${body.length} bytes) intact`);
    index++;
  }
  assert.equal(index, count);
  const { inPlace } = await peer.next<{ inPlace: number }>('sent');
  t.diagnostic(`${inPlace} of ${Math.floor(count / 2)} reservations in the ring (the rest over half the 1 MiB ring: Buffers)`);
  assert.ok(inPlace > count / 4, 'most were views of the ring');
  await peer.exited;
});
