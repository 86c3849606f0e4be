// Descriptors with channel messages over Unix stream sockets (SCM_RIGHTS beside the frames), with
// a child process at the other end; and the typed error where the stream cannot carry them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Channel, type ReceivedDescriptor, RpcChannel, pipe, unixSocketPair } from 'interprocess';
import { openFds, readAll, scratchDir, spawnFixture } from '../helpers.js';

const skip = process.platform === 'win32' ? 'Unix sockets with descriptors are Unix only' : false;
const linuxOnly = process.platform !== 'linux' && 'counts descriptors in /proc/self/fd';

/** A channel on one end of a stream socket pair whose other end is a child's descriptor 4. */
function childChannel(t: import('node:test').TestContext, mode: string, args: string[] = []) {
  const [ours, theirs] = unixSocketPair({ type: 'stream' });
  const child = spawnFixture(t, 'channel-fds', [mode, ...args], process.env, { extraFds: [theirs.fd] });
  void theirs.close();
  return { ours, child };
}

test('a pipe end and a file go to a child with a message, which uses them; messages without descriptors around them', { skip, timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  fs.writeFileSync(path.join(dir, 'file.txt'), 'the file we sent');
  const { ours, child } = childChannel(t, 'use');
  const channel = new Channel<Record<string, unknown>>(ours);
  assert.equal(channel.passesFds, true);
  const { sender, receiver } = pipe();
  const piped = readAll(receiver);
  const file = await fsp.open(path.join(dir, 'file.txt'), 'r');

  await channel.send({ seq: 0 });
  await channel.send({ seq: 1, use: true }, { fds: [sender, file] });
  await channel.send({ seq: 2 });
  // Ours stay open (the child got duplicates): close them so the pipe can end.
  sender.end();
  await file.close();

  const reports: unknown[] = [];
  for await (const report of channel) {
    reports.push(report);
    if (reports.length === 3) break; // closes the channel in order: the child's loop ends
  }
  assert.deepEqual(reports, [
    { seq: 0, kinds: [] },
    { seq: 1, kinds: ['fifo', 'file'] },
    { seq: 2, kinds: [] },
  ]);
  assert.equal(String(await piped), 'child read: the file we sent');
  assert.equal((await child.exited).code, 0);
});

test('each message gets exactly its own descriptors: small and kernel-split frames back to back, with fd-less frames between', { skip, timeout: 60_000 }, async (t) => {
  const dir = scratchDir(t);
  // Sizes around every boundary that matters: tiny, one page, the socket buffer (about 208 KiB,
  // so the kernel takes the frame in parts), and 1 MiB; fd-carrying (even) and fd-less (odd) mixed.
  const sizes = [0, 10, 70_000, 5, 300_000, 0, 1_048_576, 1_048_576, 64, 200_000, 4096, 1, 250_000, 3, 17, 65_536, 1_000_000, 9];
  const inodes = new Map<number, number>();
  for (let seq = 0; seq < sizes.length; seq += 2) {
    fs.writeFileSync(path.join(dir, String(seq)), `file ${seq}`);
    inodes.set(seq, fs.statSync(path.join(dir, String(seq))).ino);
  }
  const { ours, child } = childChannel(t, 'burst', [dir, ...sizes.map(String)]);
  const channel = new Channel<{ seq: number; pad: string }>(ours);
  let expected = 0;
  for await (const { message, fds } of channel.withFds()) {
    assert.equal(message.seq, expected++);
    assert.equal(message.pad.length, sizes[message.seq]);
    if (message.seq % 2 === 0) {
      assert.equal(fds.length, 1, `message ${message.seq} has its descriptor`);
      assert.equal(fs.fstatSync(fds[0]!.fd).ino, inodes.get(message.seq), `message ${message.seq} has its own file`);
    } else {
      assert.equal(fds.length, 0, `message ${message.seq} has none`);
    }
  }
  assert.equal(expected, sizes.length);
  assert.equal((await child.exited).code, 0);
});

test('descriptors nobody takes are closed: after a listener returns, when iteration moves on, and with plain iteration', { skip: skip || linuxOnly, timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  const sizes = Array.from({ length: 40 }, (_, i) => (i % 3) * 1000);
  for (let seq = 0; seq < sizes.length; seq += 2) fs.writeFileSync(path.join(dir, String(seq)), 'x');
  await sleep(10);
  const before = openFds();

  // A 'message' listener that takes one of them and leaves the rest.
  {
    const { ours, child } = childChannel(t, 'burst', [dir, ...sizes.map(String)]);
    const channel = new Channel<{ seq: number }>(ours);
    let taken = -1;
    let withFds = 0;
    channel.on('message', (message: { seq: number }, fds?: readonly ReceivedDescriptor[]) => {
      if (fds) withFds++;
      if (message.seq === 4) taken = fds![0]!.take();
    });
    await new Promise((resolve) => channel.on('close', resolve));
    await child.exited;
    assert.equal(withFds, 20);
    assert.equal(openFds(), before + 1, 'only the taken one is open');
    fs.closeSync(taken);
  }
  // withFds() that looks at them and moves on; then plain iteration, which cannot reach them.
  for (const plain of [false, true]) {
    const { ours, child } = childChannel(t, 'burst', [dir, ...sizes.map(String)]);
    const channel = new Channel<{ seq: number }>(ours);
    let count = 0;
    if (plain) for await (const _ of channel) count++;
    else for await (const { fds } of channel.withFds()) count += fds.length >= 0 ? 1 : 0;
    assert.equal(count, sizes.length);
    await child.exited;
    await sleep(10);
    assert.equal(openFds(), before, plain ? 'plain iteration' : 'withFds()');
  }
});

test('RPC: a request carries a descriptor; an async handler can still use it', { skip, timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  fs.writeFileSync(path.join(dir, 'note.txt'), 'sent with the request');
  const { ours, child } = childChannel(t, 'rpc');
  const rpc = new RpcChannel<unknown>(ours);
  const file = await fsp.open(path.join(dir, 'note.txt'), 'r');
  t.after(() => file.close());
  assert.equal(await rpc.request('cat', null, { fds: [file] }), 'sent with the request');
  assert.equal(await rpc.request('count', null, { fds: [file, file, file] }), 3);
  assert.equal(await rpc.request('count'), 0);
  await rpc.close();
  assert.equal((await child.exited).code, 0);
});

test('a channel on a stream that cannot carry descriptors refuses them with ERR_INTERPROCESS_NO_DESCRIPTORS and stays usable', async (t) => {
  const out = pipe();
  const back = pipe();
  const left = new Channel({ readable: back.receiver, writable: out.sender });
  const right = new Channel({ readable: out.receiver, writable: back.sender });
  t.after(() => {
    left.destroy();
    right.destroy();
  });
  assert.equal(left.passesFds, false);
  const file = await fsp.open(process.execPath, 'r');
  t.after(() => file.close());
  await assert.rejects(left.send('with a file', { fds: [file] }), { code: 'ERR_INTERPROCESS_NO_DESCRIPTORS', message: /Unix stream socket/ });
  await assert.rejects(left.send('bad', { fds: [-1] }), { code: 'ERR_INVALID_ARG_VALUE' });
  await left.send('still fine', { fds: [] });
  const [message] = (await new Promise((resolve) => right.once('message', (...args) => resolve(args)))) as unknown[];
  assert.equal(message, 'still fine');

  // A local socket (net.Socket) is a byte stream too.
  const server = net.createServer();
  const socketPath = path.join(scratchDir(t), 's.sock');
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.after(() => server.close());
  const client = net.connect(socketPath);
  const channel = new Channel(client);
  t.after(() => channel.destroy());
  await assert.rejects(channel.send(1, { fds: [file] }), { code: 'ERR_INTERPROCESS_NO_DESCRIPTORS' });
});

test('a channel needs a stream socket: datagram and seqpacket ones are refused', { skip: skip || (process.platform === 'darwin' && 'no seqpacket on macOS') }, async () => {
  for (const type of ['datagram', 'seqpacket'] as const) {
    const [a, b] = unixSocketPair({ type });
    assert.throws(() => new Channel(a), { code: 'ERR_INVALID_ARG_VALUE', message: new RegExp(`${type} socket`) });
    await a.close();
    await b.close();
  }
});

test('FrameReader gives a read\'s descriptors to the frame holding its last byte, wherever the read ends', async () => {
  const { FrameReader } = await import('#internal/channel/frame-reader.js');
  const { FrameWriter } = await import('#internal/channel/frame-writer.js');
  const writer = new FrameWriter();
  for (const text of ['a', '', 'bbbbbbbbbb', 'cc']) writer.add(text, 100);
  const stream = Buffer.concat(writer.take()); // 4 frames: 5 + 4 + 14 + 6 bytes
  const ends = [5, 9, 23, 29];
  // Every way to cut the stream into two reads, the first carrying descriptor 'x' (and the
  // second 'y'): each lands on the frame its read's last byte belongs to.
  for (let cut = 1; cut < stream.length; cut++) {
    const got: Array<[string, string[]]> = [];
    const reader = new FrameReader<string>(100, (buffer, start, end, fds) => got.push([buffer.toString('utf8', start, end), fds ?? []]));
    reader.push(stream.subarray(0, cut), ['x']);
    reader.push(stream.subarray(cut), ['y']);
    const holder = ends.findIndex((end) => cut <= end);
    const expected = ['a', '', 'bbbbbbbbbb', 'cc'].map((text, i): [string, string[]] => [text, i === holder ? (holder === 3 ? ['x', 'y'] : ['x']) : i === 3 ? ['y'] : []]);
    assert.deepEqual(got, expected, `cut at ${cut}`);
    assert.equal(reader.pending, 0);
  }
  // A read that ends inside a frame leaves its descriptors with it until the frame is complete,
  // and a stream that ends there hands them back for closing.
  const reader = new FrameReader<string>(100, () => assert.fail('no frame is complete'));
  reader.push(stream.subarray(0, 3), ['z']);
  assert.deepEqual(reader.carried, ['z']);
  assert.equal(reader.pending, 3);
});

test('a frame that spans reads is copied once, at the address modulo 16 its bytes had in the first read', async () => {
  const { FrameReader } = await import('#internal/channel/frame-reader.js');
  // memmove is several times slower when source and destination differ modulo 16 (see skewOf).
  for (const at of [0, 1, 5, 12, 16, 27]) {
    const payload = Buffer.alloc(100_000, at);
    const stream = Buffer.concat([Buffer.alloc(at, 0xee), Buffer.from([0, 1, 0x86, 0xa0]), payload]);
    const got: Buffer[] = [];
    const reader = new FrameReader(1 << 20, (buffer, start, end) => got.push(buffer.subarray(start, end)));
    const first = Buffer.alloc(65536);
    stream.copy(first, 0, 0, 65536);
    reader.push(first.subarray(at)); // the frame starts `at` bytes into its ArrayBuffer
    reader.push(stream.subarray(65536));
    assert.equal(got.length, 1);
    assert.ok(got[0]!.equals(payload), `frame at ${at}`);
    assert.equal(got[0]!.byteOffset & 15, (at + 4) & 15, `frame at ${at}`);
  }
});
