// Large messages: what the memory reused between them (src/channel/buffers.ts) must never change.
// A large text frame is encoded into a lent buffer that the next frame reuses once the stream has
// written it; a json frame joined from several reads goes to a shared scratch buffer. Each test
// here pins one boundary of that: bytes intact across processes, both ways, with many frames in
// flight; a stream that keeps written chunks never sees them rewritten; frames at and across
// read edges; text whose UTF-8 length lands at the edge of the room it was given.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { Channel, connectRpc, listen, nsName } from 'interprocess';
import { spawnFixture, uniqueName } from '../helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A json message whose frame payload is about `bytes` long, its text different for every `seed`. */
function message(bytes: number, seed: number, unicode = false): { seed: number; pad: string } {
  const overhead = JSON.stringify({ seed, pad: '' }).length;
  const unit = unicode ? 'é' : String.fromCharCode(97 + (seed % 26));
  const chars = unicode ? Math.floor((bytes - overhead) / 2) : bytes - overhead;
  return { seed, pad: unit.repeat(Math.max(0, chars - 8)) + String(seed).padStart(8, '0') };
}

// Payload sizes around Node's 64 KiB reads (a frame of 65536 bytes with its header ends one read
// exactly; 65532 fills one read with its header), and 1 MiB.
const SIZES = [65532, 65533, 65536 - 1, 65536, 65537, 2 * 65536 - 4, 200_000, MiB, MiB + 3];

test('json messages of 64 KiB to 1 MiB go both ways across processes intact, many in flight', { timeout: 120_000 }, async (t) => {
  const name = uniqueName();
  const listener = await listen(nsName(name));
  t.after(() => listener.close());
  spawnFixture(t, 'channel-peer', ['socket', name, 'json', String(16 * MiB)]);
  const [socket] = await once(listener, 'connection');
  const channel = new Channel<ReturnType<typeof message>>(socket);
  const sent = SIZES.flatMap((size, i) => [message(size, 2 * i), message(size, 2 * i + 1, true)]);
  // Twice over: sent in one tick (each frame in a buffer of its own), then awaited one by one
  // (each frame reusing the buffer the one before it was written from).
  const received: unknown[] = [];
  const reading = (async () => {
    for await (const m of channel.iterator({ closeOnReturn: false })) {
      received.push(m);
      if (received.length === 2 * sent.length) break;
    }
  })();
  await Promise.all(sent.map((m) => channel.send(m)));
  for (const m of sent) await channel.send(m);
  await reading;
  assert.equal(received.length, 2 * sent.length);
  received.forEach((m, i) => assert.deepEqual(m, sent[i % sent.length], `message ${i}`));
  await channel.close();
});

test('RpcChannel: 1 MiB json requests and replies across processes, one after another and together', { timeout: 120_000 }, async (t) => {
  const name = uniqueName();
  const server = spawnFixture(t, 'rpc-bounds-server', [name], process.env, { execArgv: ['--expose-gc'] });
  await server.next('listening');
  const rpc = await connectRpc(nsName(name));
  t.after(() => rpc.destroy());
  const bodies = SIZES.map((size, i) => message(size, i, i % 2 === 1));
  for (const body of bodies) assert.deepEqual(await rpc.request('echo', body), body);
  const replies = await Promise.all(bodies.map((body) => rpc.request('echo', body)));
  replies.forEach((reply, i) => assert.deepEqual(reply, bodies[i]));
  await rpc.close();
});

test('a stream that keeps written chunks (a PassThrough) gets fresh memory for every large frame', async () => {
  // A PassThrough calls back once it has queued a chunk for its reader, not once the chunk is
  // gone: the memory behind a frame must not be reused while it waits there unread.
  const forward = new PassThrough({ highWaterMark: 64 * MiB });
  const back = new PassThrough({ highWaterMark: 64 * MiB });
  const sender = new Channel<ReturnType<typeof message>>({ readable: back, writable: forward });
  const sent = [70_000, 70_000, 100_000, 70_000].map((size, i) => message(size, i));
  for (const m of sent) await sender.send(m); // each written (called back) before the next is encoded
  const receiver = new Channel<ReturnType<typeof message>>({ readable: forward, writable: back });
  const received: unknown[] = [];
  for await (const m of receiver) {
    received.push(m);
    if (received.length === sent.length) break;
  }
  assert.deepEqual(received, sent);
  sender.destroy();
});

test('FrameReader: frames joined from several reads into the shared scratch buffer, two readers interleaved', async () => {
  const { FrameReader } = await import('#internal/channel/frame-reader.js');
  const frame = (payload: Buffer) => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(payload.length, 0);
    return Buffer.concat([header, payload]);
  };
  const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
  const payloads = [...SIZES, 10, 0, 70_000].map((size, i) => Buffer.alloc(size, i + 1).fill(i * 7 + 3, 0, Math.min(size, 5)));
  const stream = Buffer.concat(payloads.map(frame));
  const expected = payloads.map(digest);
  // Cut at every read size that matters: Node's 64 KiB, odd sizes, a header split in two.
  for (const size of [65536, 65535, 4096, 100_003, 6]) {
    const got: string[][] = [[], []];
    const readers = got.map((list) => {
      const reader = new FrameReader(4 * MiB, (buffer, start, end) => list.push(digest(buffer.subarray(start, end))));
      reader.transient = true;
      return reader;
    });
    // Each reader gets the same chunks, one after the other's: a frame one of them completes in
    // the scratch buffer must not disturb the pieces the other one holds.
    for (let at = 0; at < stream.length; at += size) {
      const chunk = stream.subarray(at, at + size);
      readers[0]!.push(Buffer.from(chunk));
      readers[1]!.push(Buffer.from(chunk));
    }
    assert.deepEqual(got[0], expected, `reads of ${size}`);
    assert.deepEqual(got[1], expected, `reads of ${size}`);
  }
});

test('FrameWriter: large text whose UTF-8 ends at the edge of the room it was given is encoded whole', async () => {
  const { FrameWriter } = await import('#internal/channel/frame-writer.js');
  const reference = (body: string, kind: number, id: number, name: string | null) => {
    const parts = [kind >= 0 ? Buffer.from([kind]) : Buffer.alloc(0), id >= 0 ? Buffer.from([id >>> 24, (id >>> 16) & 255, (id >>> 8) & 255, id & 255]) : Buffer.alloc(0)];
    if (name !== null) parts.push(Buffer.from([Buffer.byteLength(name) >> 8, Buffer.byteLength(name) & 255]), Buffer.from(name));
    const payload = Buffer.concat([...parts, Buffer.from(body)]);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(payload.length, 0);
    return Buffer.concat([header, payload]);
  };
  // A byte a character is the guess; each é is one byte more, each 😀 (two characters) two.
  const bodies: string[] = [];
  for (let extra = 0; extra <= 9; extra++) {
    bodies.push('a'.repeat(20_000 - extra) + 'é'.repeat(extra));
    bodies.push('é'.repeat(extra) + 'a'.repeat(20_000 - extra));
    bodies.push('a'.repeat(20_000 - 2 * extra) + '😀'.repeat(extra));
  }
  bodies.push('é'.repeat(70_000), '😀'.repeat(40_000), 'a'.repeat(65_531), 'a'.repeat(MiB));
  for (const reuse of [false, true]) {
    for (const [kind, id, name] of [[-1, -1, null], [1, 77, 'echo'], [4, -1, 'événement']] as const) {
      for (const body of bodies) {
        const writer = new FrameWriter(reuse);
        writer.add(body, 16 * MiB, { kind, id, name });
        const bytes = Buffer.concat(writer.take());
        assert.ok(bytes.equals(reference(body, kind, id, name)), `${body.length} characters, ${Buffer.byteLength(body)} bytes, reuse ${reuse}, name ${name}`);
        // Given back as the send queue does once written: the next frame reuses the memory.
        for (const loan of writer.takeLoans() ?? []) (await import('#internal/channel/buffers.js')).giveBack(loan);
      }
    }
  }
  // Too large, counted in bytes: refused, and nothing is left lent or queued.
  const writer = new FrameWriter(true);
  assert.throws(() => writer.add('é'.repeat(40_000), 70_000), { code: 'ERR_INTERPROCESS_FRAME_TOO_LARGE' });
  assert.throws(() => writer.add('a'.repeat(70_001), 70_000), { code: 'ERR_INTERPROCESS_FRAME_TOO_LARGE' });
  writer.add('a'.repeat(70_000), 70_000);
  assert.equal(Buffer.concat(writer.take()).length, 70_004);
  assert.equal(writer.takeLoans()?.length, 1);
});

test('FrameReader: a peer trickling a 1 MiB frame a byte at a time beside another reader joining 6 MiB frames: both intact, the scratch buffer kept at 4 MiB at most', async () => {
  const { FrameReader } = await import('#internal/channel/frame-reader.js');
  const { scratch } = await import('#internal/channel/buffers.js');
  const frame = (payload: Buffer) => Buffer.concat([Buffer.from([payload.length >>> 24, (payload.length >>> 16) & 255, (payload.length >>> 8) & 255, payload.length & 255]), payload]);
  const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
  const trickled = Buffer.from(JSON.stringify(message(MiB, 7)));
  // Larger than the scratch buffer keeps (SCRATCH_KEEP), and a 200 KB one that fits in it.
  const others = [6 * MiB, 200_000, 6 * MiB + 5, 200_001].map((size, i) => Buffer.alloc(size, i + 1).fill(i * 11 + 5, 0, 7));
  const got: string[][] = [[], []];
  const [slow, other] = got.map((list) => {
    const reader = new FrameReader(16 * MiB, (buffer, start, end) => list.push(digest(buffer.subarray(start, end))));
    reader.transient = true;
    return reader;
  });
  const slowBytes = frame(trickled);
  const otherBytes = Buffer.concat(others.map(frame));
  const piece = 65_536;
  const every = Math.floor(slowBytes.length / Math.ceil(otherBytes.length / piece)); // the other's reads spread over the trickle
  let next = 0;
  for (let at = 0; at < slowBytes.length; at++) {
    slow!.push(Buffer.from(slowBytes.subarray(at, at + 1)));
    if (at % every === 0 && next < otherBytes.length) {
      other!.push(Buffer.from(otherBytes.subarray(next, next + piece)));
      next += piece;
    }
  }
  if (next < otherBytes.length) other!.push(Buffer.from(otherBytes.subarray(next)));
  assert.deepEqual(got[0], [digest(trickled)], 'the trickled frame, whole');
  assert.deepEqual(got[1], others.map(digest), 'the other reader\'s frames, whole');
  assert.ok(scratch(0).length <= 4 * MiB, `the shared scratch buffer is kept at 4 MiB at most (${scratch(0).length} bytes)`);
});
