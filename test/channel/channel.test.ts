// Message channels across real processes and transports, and every way a peer can misbehave.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Channel, type CodecName, connect, createFifo, listen, nsName, openFifoReader, openFifoWriter, pipe, spawnWith } from 'interprocess';
import { notOnWindows, patternBytes, scratchDir, spawnFixture, uniqueName } from '../helpers.js';

const MiB = 1024 * 1024;
const peerScript = fileURLToPath(new URL('../fixtures/channel-peer.js', import.meta.url));

/** Opens a channel to an echoing child over `transport`. */
async function echoPeer(t: import('node:test').TestContext, transport: 'socket' | 'pipe' | 'fifo', codec: CodecName, max: number): Promise<Channel<any>> {
  if (transport === 'socket') {
    const name = uniqueName();
    const listener = await listen(nsName(name));
    t.after(() => listener.close());
    spawnFixture(t, 'channel-peer', ['socket', name, codec, String(max)]);
    const [socket] = await once(listener, 'connection');
    return new Channel(socket, { codec, maxMessageSize: max });
  }
  if (transport === 'pipe') {
    const out = pipe();
    const back = pipe();
    const child = spawnWith(process.execPath, [peerScript, 'pipe', codec, String(max)], { fds: { 3: out.receiver, 4: back.sender }, stdio: 'inherit' });
    t.after(() => child.kill());
    return new Channel({ readable: back.receiver, writable: out.sender }, { codec, maxMessageSize: max });
  }
  const dir = scratchDir(t);
  const [toPeer, fromPeer] = [path.join(dir, 'to'), path.join(dir, 'from')];
  await createFifo(toPeer);
  await createFifo(fromPeer);
  spawnFixture(t, 'channel-peer', ['fifo', toPeer, fromPeer, codec, String(max)]);
  const writable = await openFifoWriter(toPeer, { wait: true, timeout: 10_000 });
  const readable = openFifoReader(fromPeer);
  return new Channel({ readable, writable }, { codec, maxMessageSize: max });
}

const digest = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

for (const transport of ['socket', 'pipe', 'fifo'] as const) {
  const skip = transport === 'fifo' ? notOnWindows.fifo : false;
  test(`raw codec over a ${transport}: 0 bytes to 64 MiB, boundaries and bytes intact`, { skip, timeout: 120_000 }, async (t) => {
    const channel = await echoPeer(t, transport, 'raw', 65 * MiB);
    const sizes = [0, 1, 1000, 65536, MiB, 64 * MiB];
    const sent = sizes.map((size, i) => patternBytes(size, i + 1));
    await Promise.all(sent.map((message) => channel.send(message)));
    const received: Buffer[] = [];
    for await (const message of channel) {
      received.push(message);
      if (received.length === sent.length) break;
    }
    assert.deepEqual(received.map((m) => m.length), sizes);
    assert.deepEqual(received.map(digest), sent.map(digest));
  });

  test(`json and v8 codecs over a ${transport}: values round-trip`, { skip, timeout: 60_000 }, async (t) => {
    for (const codec of ['json', 'v8'] as const) {
      const channel = await echoPeer(t, transport, codec, 16 * MiB);
      const values: unknown[] = [null, 0, 'text', [1, 'two', { three: 3 }], { nested: { deep: [true, false] } }, 'é'.repeat(MiB / 2)];
      if (codec === 'v8') values.push(new Map([[1, new Set(['a'])]]), new Date(0), new Uint8Array([1, 2, 3]), 10n ** 30n);
      for (const value of values) await channel.send(value);
      const received: unknown[] = [];
      for await (const message of channel) {
        received.push(message);
        if (received.length === values.length) break;
      }
      assert.deepEqual(received, values);
    }
  });
}

test('a custom codec is one object with encode and decode', async (t) => {
  const { sender, receiver } = pipe();
  const upper = { encode: (s: string) => Buffer.from(s.toUpperCase()), decode: (b: Buffer) => `<${b}>` };
  const left = new Channel<string>({ readable: pipe().receiver, writable: sender }, { codec: upper });
  const right = new Channel<string>({ readable: receiver, writable: pipe().sender }, { codec: upper });
  const received = once(right, 'message'); // before sending: the message may come before send() resolves
  await left.send('shout');
  const [message] = await received;
  assert.equal(message, '<SHOUT>');
  left.destroy();
  right.destroy();
  t.diagnostic('custom codecs are used as given');
});

/** A channel server in this process fed raw bytes from a plain net client. */
async function feed(bytes: Buffer, maxMessageSize: number): Promise<{ messages: number; error: string | undefined }> {
  const name = nsName(uniqueName());
  await using listener = await listen(name);
  const accepted = once(listener, 'connection');
  const client = await connect(name); // not net.connect: Node 20 pads abstract names
  client.on('error', () => {});
  const [socket] = (await accepted) as [net.Socket];
  const channel = new Channel<Buffer>(socket, { codec: 'raw', maxMessageSize });
  let messages = 0;
  channel.on('message', () => messages++);
  const closed = new Promise<[unknown]>((resolve) => channel.on('close', (error) => resolve([error]))); // events.once would reject on 'error'
  client.end(bytes);
  const [error] = (await closed) as [{ code: string } | undefined];
  client.destroy();
  return { messages, error: error?.code };
}

test('fuzzed frames: random lengths, truncations and garbage end only that channel', { timeout: 60_000 }, async () => {
  const max = 64 * 1024;
  const baseline = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const parts: Buffer[] = [];
    for (let f = 0; f < 1 + (i % 5); f++) {
      const kind = (i * 7 + f) % 4;
      const header = Buffer.alloc(4);
      if (kind === 0) {
        header.writeUInt32BE(Math.floor(Math.random() * 2 ** 32), 0); // mostly far over the limit
        parts.push(header, randomBytes(16));
      } else if (kind === 1) {
        const length = Math.floor(Math.random() * 2000);
        header.writeUInt32BE(length, 0);
        parts.push(header, randomBytes(Math.floor(length * Math.random()))); // truncated
      } else if (kind === 2) {
        parts.push(randomBytes(1 + Math.floor(Math.random() * 64))); // garbage
      } else {
        const body = randomBytes(Math.floor(Math.random() * 500));
        header.writeUInt32BE(body.length, 0);
        parts.push(header, body); // a good frame
      }
    }
    const { error } = await feed(Buffer.concat(parts), max);
    outcomes.set(error ?? 'clean', (outcomes.get(error ?? 'clean') ?? 0) + 1);
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline);
  }
  for (const code of outcomes.keys()) {
    assert.ok(['clean', 'ERR_INTERPROCESS_FRAME_TOO_LARGE', 'ERR_INTERPROCESS_TRUNCATED'].includes(code), code);
  }
  assert.ok(outcomes.get('ERR_INTERPROCESS_FRAME_TOO_LARGE')! > 0 && outcomes.get('ERR_INTERPROCESS_TRUNCATED')! > 0, JSON.stringify([...outcomes]));
  assert.ok(peak < 64 * MiB, `memory stayed bounded (peak ${Math.round(peak / MiB)} MiB over baseline)`);
});

test('a 4 GiB length is refused before anything is allocated', async () => {
  const before = process.memoryUsage().arrayBuffers;
  const header = Buffer.alloc(4);
  header.writeUInt32BE(0xffffffff, 0);
  const { error } = await feed(header, 16 * MiB);
  assert.equal(error, 'ERR_INTERPROCESS_FRAME_TOO_LARGE');
  assert.ok(process.memoryUsage().arrayBuffers - before < 16 * MiB);
});

test('a malformed JSON payload ends the channel with ERR_INTERPROCESS_DECODE', async () => {
  const name = nsName(uniqueName());
  await using listener = await listen(name);
  const accepted = once(listener, 'connection');
  const client = await connect(name);
  const [socket] = (await accepted) as [net.Socket];
  const channel = new Channel(socket, { codec: 'json' });
  const closed = new Promise<[unknown]>((resolve) => channel.on('close', (error) => resolve([error]))); // events.once would reject on 'error'
  client.end(Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('{nope')]));
  const [error] = (await closed) as [{ code: string; message: string }];
  assert.equal(error.code, 'ERR_INTERPROCESS_DECODE');
  assert.equal(channel.error?.code, 'ERR_INTERPROCESS_DECODE');
  await assert.rejects(channel.send('after'), { code: 'ERR_INTERPROCESS_DECODE' });
});

/** Frames of these JSON texts in one write, read by a json channel: what it delivered and how it ended. */
async function readJsonFrames(texts: string[]): Promise<{ received: unknown[]; error: string | undefined }> {
  const name = nsName(uniqueName());
  await using listener = await listen(name);
  const accepted = once(listener, 'connection');
  const client = await connect(name);
  client.on('error', () => {});
  const [socket] = (await accepted) as [net.Socket];
  const channel = new Channel(socket, { codec: 'json' });
  const received: unknown[] = [];
  channel.on('message', (message) => received.push(message));
  const closed = new Promise<[unknown]>((resolve) => channel.on('close', (error) => resolve([error])));
  client.end(Buffer.concat(texts.flatMap((text) => {
    const body = Buffer.from(text);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length, 0);
    return [header, body];
  })));
  const [error] = (await closed) as [{ code: string } | undefined];
  client.destroy();
  return { received, error: error?.code };
}

test('json frames that arrive together are read exactly as one by one, and a bad one among them is found', async () => {
  // Runs of frames in one read are parsed with one JSON.parse (see Channel#parseRun): every kind
  // of JSON text, as any encoder writes it, must come out as JSON.parse reads it alone.
  const texts = [
    '{"a":1}', '[1,2]', '"s"', '12', '-0.5e3', 'true', 'null', '{}', '[]', '""',
    ' { "spaced" : [ 1 , 2 ] } ', '{"a": 1, "b": [1, 2]}', '{"tricky":"]},{\\"}[","x":[{"y":"\\n"}]}',
    '"\\u00e9 é 😀"', '{"__proto__":{"polluted":true}}', '[[[]],{"":{}}]', '{"z":0}',
  ];
  for (let round = 0; round < 3; round++) {
    const { received, error } = await readJsonFrames(texts);
    assert.equal(error, undefined);
    assert.deepEqual(received, texts.map((text) => JSON.parse(text)));
  }
  assert.equal(({} as { polluted?: boolean }).polluted, undefined);

  // Frames that are not one JSON value each, even where joined they would read as JSON: the
  // channel ends with ERR_INTERPROCESS_DECODE at the first, after delivering those before it.
  const good = ['{"n":1}', '{"n":2}', '[3]'];
  for (const bad of [['[1', '2]'], ['{"a":1}{"b":2}'], ['{"a":1},{"b":2}'], ['"a","b"'], ['{"a":1', '}'], ['[1]]', '[[2]'], ['']]) {
    const { received, error } = await readJsonFrames([...good, ...bad, '{"after":true}']);
    assert.equal(error, 'ERR_INTERPROCESS_DECODE', JSON.stringify(bad));
    assert.deepEqual(received, good.map((text) => JSON.parse(text)), JSON.stringify(bad));
  }
});

test('sending: too large is refused and the channel stays usable; encode errors reject', async () => {
  const a = pipe();
  const b = pipe();
  const channel = new Channel<unknown>({ readable: b.receiver, writable: a.sender }, { maxMessageSize: 100 });
  const peer = new Channel<unknown>({ readable: a.receiver, writable: b.sender }, { maxMessageSize: 100 });
  await assert.rejects(channel.send('x'.repeat(200)), { code: 'ERR_INTERPROCESS_FRAME_TOO_LARGE' });
  await assert.rejects(channel.send(undefined), { code: 'ERR_INVALID_ARG_TYPE' });
  const received = once(peer, 'message');
  await channel.send('still fine');
  const [message] = await received;
  assert.equal(message, 'still fine');
  channel.destroy();
  peer.destroy();
  await assert.rejects(channel.send('closed'), { code: 'ERR_INTERPROCESS_CLOSED' });
});

test('orderly close: every message sent before close() arrives, even from a peer that leaves at once', { timeout: 60_000 }, async (t) => {
  const child = spawnFixture(t, 'channel-burst', [uniqueName()]);
  const { name } = await child.next<{ name: string }>('listening');
  const channel = new Channel<number>(await connect(nsName(name)), { codec: 'json' });
  let expected = 0;
  for await (const n of channel) {
    assert.equal(n, expected++);
  }
  assert.equal(expected, 10_000, 'all 10 000 messages, in order');
  assert.equal(channel.error, null);
});

test('backpressure: a slow reader makes the sender wait, memory stays bounded', { timeout: 60_000 }, async () => {
  const a = pipe({ size: 65536 });
  const b = pipe({ size: 65536 });
  const sender = new Channel<Buffer>({ readable: b.receiver, writable: a.sender }, { codec: 'raw' });
  const reader = new Channel<Buffer>({ readable: a.receiver, writable: b.sender }, { codec: 'raw', highWaterMark: 4 });
  const chunk = Buffer.alloc(256 * 1024);
  let received = 0;
  const reading = (async () => {
    for await (const message of reader) {
      received += message.length;
      await new Promise((resolve) => setTimeout(resolve, 1)); // a slow consumer
      if (received >= 200 * chunk.length) break;
    }
  })();
  let maxQueued = 0;
  for (let i = 0; i < 200; i++) {
    await sender.send(chunk);
    maxQueued = Math.max(maxQueued, a.sender.writableLength);
  }
  await reading;
  assert.equal(received, 200 * chunk.length);
  assert.ok(maxQueued <= 2 * chunk.length + 65536, `the sender's queue stayed small (${maxQueued} bytes)`);
  sender.destroy();
  reader.destroy();
});

test('FrameWriter: text frames of a batch encoded together give exactly the bytes of frames written one by one', async () => {
  const { FrameReader } = await import('#internal/channel/frame-reader.js');
  const { FrameWriter } = await import('#internal/channel/frame-writer.js');
  type Envelope = { kind: number; id: number; name: string | null };
  // The reference: each frame on its own, as docs/channel.md lays it out.
  const reference = (body: string | Uint8Array, { kind, id, name }: Envelope): Buffer => {
    const parts: Buffer[] = [];
    if (kind >= 0) parts.push(Buffer.from([kind]));
    if (id >= 0) parts.push(Buffer.from([id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff]));
    if (name !== null) {
      const bytes = Buffer.from(name);
      parts.push(Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes);
    }
    parts.push(typeof body === 'string' ? Buffer.from(body) : Buffer.from(body));
    const payload = Buffer.concat(parts);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(payload.length, 0);
    return Buffer.concat([header, payload]);
  };
  const none: Envelope = { kind: -1, id: -1, name: null };
  const frames: Array<[string | Uint8Array, Envelope]> = [
    ['{"a":1}', none],
    ['', none],
    ['"\0 \u0001"', { kind: 0, id: -1, name: null }],
    ['[1,2,3]', { kind: 1, id: 0xfedcba98, name: 'echo' }],
    ['{"x":"y"}', { kind: 2, id: 0x80, name: null }],
    ['null', { kind: 4, id: -1, name: '' }],
    [Buffer.from([1, 2, 3]), { kind: 0, id: -1, name: null }], // bytes between texts
    ['"héllo, 世界 😀"', none], // not ASCII
    ['{"k":1}', { kind: 4, id: -1, name: 'événement' }], // a name that is not ASCII
    [Buffer.alloc(5000, 7), none], // a chunk of its own
    ['x'.repeat(6000), none], // over TEXT_IN_SLAB at 3 bytes a character: written at once
    ['{"last":true}', { kind: 1, id: 7, name: 'm' }],
  ];
  // Every split of the list into ASCII-only and mixed batches: each batch from its own writer state.
  for (let cut = 0; cut <= frames.length; cut++) {
    const writer = new FrameWriter();
    const expected: Buffer[] = [];
    const got: Buffer[] = [];
    for (const [i, [body, envelope]] of frames.entries()) {
      if (i === cut) got.push(Buffer.concat(writer.take()));
      writer.add(body, 1 << 20, envelope);
      expected.push(reference(body, envelope));
    }
    got.push(Buffer.concat(writer.take()));
    assert.ok(Buffer.concat(got).equals(Buffer.concat(expected)), `batches split before frame ${cut}`);
    assert.equal(writer.bytes, 0);
  }
  // And a reader gets the bodies back.
  const writer = new FrameWriter();
  for (const [body] of frames) writer.add(body, 1 << 20);
  const bodies: string[] = [];
  const reader = new FrameReader(1 << 20, (buffer, start, end) => bodies.push(buffer.toString('latin1', start, end)));
  reader.push(Buffer.concat(writer.take()));
  assert.deepEqual(bodies, frames.map(([body]) => Buffer.from(body).toString('latin1')));
  // A frame too large is refused at once, and the frames waiting before it still leave.
  const small = new FrameWriter();
  small.add('{"a":1}', 100);
  assert.throws(() => small.add('"' + 'y'.repeat(200) + '"', 100), { code: 'ERR_INTERPROCESS_FRAME_TOO_LARGE' });
  assert.ok(Buffer.concat(small.take()).equals(reference('{"a":1}', none)));
});
