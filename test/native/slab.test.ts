// Warm blocks for large received messages (native/common/slab.c, received() of channel/buffers.ts):
// messages from another process intact over both transports, a message kept while others arrive
// never overwritten, blocks back in the pool once their messages are collected, a block's buffer
// sent to a worker intact.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { Channel, listenUnix } from '#internal/index.js';
import { requireNative } from '#internal/native/addon.js';
import { spawnFixture, testSocketPath } from '../helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const unix = process.platform !== 'win32';

for (const transport of ['stream', 'shared-memory'] as const) {
  test(`${transport}: 64 messages of 1 MiB from another process, each intact, a kept one never overwritten; their blocks come back once collected`, { skip: !unix && 'Unix stream sockets and shared memory (the blocks themselves are the same code on Windows)', timeout: 60_000 }, async (t) => {
    const slabs = requireNative('the test').slabs;
    const socketPath = testSocketPath(t, 'l');
    const listener = await listenUnix(socketPath);
    const peer = spawnFixture(t, 'shm-peer', [socketPath, 'large', transport]);
    const socket = (await listener[Symbol.asyncIterator]().next()).value;
    await listener.close();
    const channel = new Channel<Buffer>(socket, { transport, codec: 'raw', maxMessageSize: 16 << 20 });
    const kept: Buffer[] = [];
    let i = 0;
    for await (const body of channel) {
      assert.equal(body.length, (1 << 20) + i);
      assert.ok(body[0] === (i & 255) && body[body.length - 1] === (i & 255) && body[body.length >> 1] === (i & 255), `message ${i} intact`);
      if (i % 8 === 0) kept.push(body);
      i++;
    }
    assert.equal(i, 64);
    await peer.exited;
    kept.forEach((body, k) => assert.ok(body.every((byte) => byte === ((k * 8) & 255)), `kept message ${k * 8} unchanged while 63 more arrived`));
    kept.length = 0;
    // Collected, then their finalizers run (on a later turn): the blocks are idle again.
    for (let round = 0; round < 20 && slabs.idle()[0] === 0; round++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const [blocks, bytes] = slabs.idle();
    t.diagnostic(`${blocks} blocks (${(bytes / 2 ** 20).toFixed(0)} MiB) idle`);
    assert.ok(blocks > 0 && bytes <= 64 * 2 ** 20, `blocks came back, at most 64 MiB kept: ${blocks}, ${bytes}`);
  });
}

test('a block taken, filled, sent to a worker (transfer list or not): intact there and here; its size is checked', { timeout: 30_000 }, async () => {
  const slabs = requireNative('the test').slabs;
  const memory = slabs.take(300_000)!;
  assert.ok(memory instanceof ArrayBuffer && memory.byteLength === 300_000);
  new Uint8Array(memory).fill(9);
  const worker = new Worker(`require('node:worker_threads').parentPort.on('message', (m) => { const v = new Uint8Array(m); require('node:worker_threads').parentPort.postMessage([v.length, v[0], v[v.length - 1]]); });`, { eval: true });
  const answers: unknown[] = [];
  worker.on('message', (m) => answers.push(m));
  try {
    worker.postMessage(memory, [memory]);
  } catch {
    worker.postMessage(memory); // a runtime that refuses to transfer it copies it
  }
  worker.postMessage(memory);
  while (answers.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(answers[0], [300_000, 9, 9]);
  await worker.terminate();
  for (const size of [-1, 1.5, 33 * 2 ** 20, Number.NaN]) assert.throws(() => slabs.take(size), { code: 'ERR_OUT_OF_RANGE' });
  assert.equal(slabs.take(0)!.byteLength, 0);
});
