// A flood: 1,000,000 messages of 64 bytes sent as fast as possible from another process to a
// reader that is slower (it pauses now and then). On seqpacket and connected datagram sockets the
// kernel holds the sender back when the reader falls behind, and interprocess holds the JS side
// back (bounded queues on both ends), so none is lost, the order holds, and memory stays bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type UnixSocket, bindDatagram, listenUnix, nsName } from 'interprocess';
import { spawnFixture, uniqueName } from '../helpers.js';

const COUNT = 1_000_000;
const SIZE = 64;

async function drainChecked(socket: UnixSocket): Promise<{ received: number; rssGrowth: number }> {
  const rssBefore = process.memoryUsage().rss;
  let rssMax = rssBefore;
  let expected = 0;
  for await (const message of socket) {
    assert.equal(message.data.length, SIZE);
    const seq = message.data.readUInt32LE(0);
    if (seq !== expected) assert.fail(`message ${expected} expected, ${seq} arrived: lost or reordered`);
    expected++;
    if (expected % 100_000 === 0) {
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
      await sleep(20); // the slower reader: the sender must wait, not drop or pile up
    }
    if (expected === COUNT) break;
  }
  return { received: expected, rssGrowth: rssMax - rssBefore };
}

for (const type of ['seqpacket', 'datagram'] as const) {
  test(`flood of ${COUNT.toLocaleString('en-US')} ${SIZE}-byte messages on ${type === 'datagram' ? 'a connected datagram' : 'a seqpacket'} socket: none lost, in order, memory bounded`, { timeout: 120_000 }, async (t) => {
    const raw = uniqueName('flood');
    const args = [type, 'ns', raw, String(COUNT), String(SIZE)];
    let reader: UnixSocket;
    let sender;
    if (type === 'datagram') {
      reader = await bindDatagram(nsName(raw), { highWaterMark: 1024 });
      sender = spawnFixture(t, 'unix-flood', args);
    } else {
      const listener = await listenUnix(nsName(raw), { type: 'seqpacket', highWaterMark: 1024 });
      t.after(() => listener.close());
      sender = spawnFixture(t, 'unix-flood', args);
      reader = (await listener[Symbol.asyncIterator]().next()).value as UnixSocket;
    }
    t.after(() => reader.close());
    const { received, rssGrowth } = await drainChecked(reader);
    assert.equal(received, COUNT);
    const report = await sender.next<{ sent: number; maxQueue: number; rssGrowth: number }>('done');
    assert.equal(report.sent, COUNT);
    assert.ok(report.maxQueue <= 4096, `the sender's queue stayed within its limit (${report.maxQueue})`);
    const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    assert.ok(report.rssGrowth < 200 * 1048576, `the sender's memory stayed bounded (grew ${mib(report.rssGrowth)})`);
    assert.ok(rssGrowth < 200 * 1048576, `the reader's memory stayed bounded (grew ${mib(rssGrowth)})`);
    t.diagnostic(`sender grew ${mib(report.rssGrowth)}, reader ${mib(rssGrowth)}`);
  });
}
