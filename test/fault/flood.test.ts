// A flood at a slow reader: another process sends as fast as a Channel lets it, the reader takes
// its time. The reader's channel stops reading past its highWaterMark, so the kernel and then the
// sender are held back: the reader's memory stays bounded, nothing is lost, the order holds.
// (Unix datagram and seqpacket floods: test/unix-socket/flood.test.ts.)
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Channel, type LocalSocket, listen, nsName } from 'interprocess';
import { spawnFixture, uniqueName } from '../helpers.js';
import { MiB, figure, full, mib, rssSampler } from './fault.js';

const COUNT = full ? 200_000 : 50_000;
const SIZE = 1024;

test(`a Channel flood of ${COUNT} ${SIZE}-byte messages at a slow reader: memory bounded, none lost, in order`, { timeout: 120_000 }, async (t) => {
  const raw = uniqueName('flood');
  await using listener = await listen(nsName(raw));
  const connected = once(listener, 'connection');
  const sender = spawnFixture(t, 'fault-channel-flood', [raw, String(COUNT), String(SIZE)]);
  const [conn] = (await connected) as [LocalSocket];
  const channel = new Channel<{ i: number; pad: string }>(conn, { highWaterMark: 64 });
  const rss = rssSampler();
  const started = performance.now();
  let expected = 0;
  for await (const message of channel) {
    if (message.i !== expected) assert.fail(`message ${expected} expected, ${message.i} arrived`);
    assert.equal(message.pad.length, SIZE);
    expected++;
    if (expected % 5000 === 0) await sleep(20); // the slow reader
  }
  const ms = performance.now() - started;
  const peak = rss.stop();
  await sender.next('done');
  figure(`Channel flood at a slow reader: ${expected} messages (${mib(expected * SIZE)}) in ${ms.toFixed(0)} ms, reader peak RSS +${mib(peak)}`);
  assert.equal(expected, COUNT);
  assert.ok(peak < 100 * MiB, `the reader's memory stayed bounded (+${mib(peak)} for ${mib(COUNT * SIZE)} sent)`);
});
