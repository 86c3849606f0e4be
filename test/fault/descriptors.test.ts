// Descriptor storms: messages of 253 descriptors (the kernel's limit) from another process,
// received and closed; the same with maxFds below what is sent (MSG_CTRUNC: each message is a
// typed ERR_INTERPROCESS_CTRUNC in its place, and the descriptors that did arrive are closed);
// and over a Channel on a stream socket. Descriptors come back to baseline on both sides.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { Channel, type UnixSocket, listenUnix, nsName } from 'interprocess';
import { openFds, spawnFixture, uniqueName } from '../helpers.js';
import { baseline, fdsBack, figure, full, typed } from './fault.js';

const COUNT = full ? 400 : 100;
const PER = 253;

/**
 * A listener whose connection reads ahead little: 1024 messages of 253 descriptors read ahead
 * (the default highWaterMark) would be 259,072 descriptors, past any descriptor limit.
 */
async function accept(t: TestContext, type: 'seqpacket' | 'stream', raw: string, maxFds: number) {
  const listener = await listenUnix(nsName(raw), { type, maxFds, highWaterMark: 4 });
  const conn = listener[Symbol.asyncIterator]().next().then((r) => r.value as UnixSocket);
  t.after(async () => {
    await listener.close();
    await (await conn).close();
  });
  return { listener, conn };
}

test(`descriptor storm: ${COUNT} seqpacket messages of ${PER} descriptors, each received and closed`, { skip: process.platform === 'win32' && 'descriptor passing (SCM_RIGHTS) is a Unix socket feature; Windows has none', timeout: 120_000 }, async (t) => {
  const before = await baseline(t);
  const raw = uniqueName('storm');
  const { listener, conn } = await accept(t, 'seqpacket', raw, PER);
  const sender = spawnFixture(t, 'fault-fd-storm', ['seqpacket', raw, String(COUNT), String(PER)]);
  const socket = await conn;
  const started = performance.now();
  let received = 0;
  let peakFds = 0;
  for (let i = 0; i < COUNT; i++) {
    const message = (await socket.receive())!;
    assert.equal(String(message.data), `message ${i}`);
    assert.equal(message.fds.length, PER);
    peakFds = Math.max(peakFds, openFds());
    for (const fd of message.fds) fd.close();
    received += message.fds.length;
  }
  const report = await sender.next<{ sent: number; leaked: number }>('done');
  const ms = performance.now() - started;
  assert.equal(await socket.receive(), null);
  await socket.close();
  await listener.close();
  sender.send('exit');
  await sender.exited; // its IPC channel is one of our descriptors
  const back = await fdsBack(before);
  figure(`descriptor storm: ${received} descriptors in ${COUNT} messages received and closed in ${ms.toFixed(0)} ms, peak ${peakFds - before} open over baseline, fds back in ${back.ms} ms; sender leaked ${report.leaked}`);
  assert.equal(back.fds, before);
  assert.equal(report.leaked, 0);
  // One receive batch (recvmmsg, 64 messages) may be read ahead whatever highWaterMark says.
  assert.ok(peakFds - before <= 64 * PER + 64, `descriptors held at once stay within one receive batch (${peakFds - before})`);
});

test(`MSG_CTRUNC storm: ${COUNT} messages of ${PER} descriptors to maxFds 16: typed errors in place, every descriptor closed`, { skip: process.platform === 'win32' && 'descriptor passing (SCM_RIGHTS) is a Unix socket feature; Windows has none', timeout: 120_000 }, async (t) => {
  const before = await baseline(t);
  const raw = uniqueName('ctrunc');
  const { listener, conn } = await accept(t, 'seqpacket', raw, 16);
  const sender = spawnFixture(t, 'fault-fd-storm', ['seqpacket', raw, String(COUNT), String(PER)]);
  const socket = await conn;
  let truncated = 0;
  for (let i = 0; i < COUNT; i++) {
    const outcome = await socket.receive().then((m) => m, (e: unknown) => e);
    assert.ok(typed(outcome) && outcome.code === 'ERR_INTERPROCESS_CTRUNC', `message ${i}: ${String(outcome)}`);
    truncated++;
  }
  await sender.next('done');
  assert.equal(await socket.receive(), null, 'the socket stayed usable to its end');
  await socket.close();
  await listener.close();
  sender.send('exit');
  await sender.exited; // its IPC channel is one of our descriptors
  const back = await fdsBack(before);
  figure(`MSG_CTRUNC storm: ${truncated} truncated messages, each a typed ERR_INTERPROCESS_CTRUNC, fds back in ${back.ms} ms`);
  assert.equal(back.fds, before);
});

test(`descriptor storm over a Channel: ${COUNT} messages of ${PER} descriptors on a stream socket`, { skip: process.platform === 'win32' && 'descriptor passing (SCM_RIGHTS) is a Unix socket feature; Windows has none', timeout: 120_000 }, async (t) => {
  const before = await baseline(t);
  const raw = uniqueName('storm-channel');
  const { listener, conn } = await accept(t, 'stream', raw, PER);
  const sender = spawnFixture(t, 'fault-fd-storm', ['channel', raw, String(COUNT), String(PER)]);
  const channel = new Channel<{ i: number }>(await conn);
  let messages = 0;
  let descriptors = 0;
  for await (const { message, fds } of channel.withFds()) {
    assert.equal(message.i, messages++);
    assert.equal(fds.length, PER);
    descriptors += fds.length; // left to the channel, which closes them when the loop moves on
  }
  assert.equal(messages, COUNT);
  await sender.next('done');
  await listener.close();
  sender.send('exit');
  await sender.exited; // its IPC channel is one of our descriptors
  const back = await fdsBack(before);
  figure(`Channel descriptor storm: ${descriptors} descriptors in ${messages} messages, closed by the channel, fds back in ${back.ms} ms`);
  assert.equal(back.fds, before);
});
