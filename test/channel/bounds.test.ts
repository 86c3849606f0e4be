// What a hostile peer can make an RPC server hold: requests flooded without reading the replies,
// requests left waiting on a slow handler, a frame trickled a byte a write. The server is a child
// process that measures itself (docs/reliability.md gives the bounds asserted here).
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { connect, connectRpc, nsName } from 'interprocess';
import { sanitizerScale, spawnFixture, uniqueName, type Fixture } from '../helpers.js';

const MiB = 1024 * 1024;
// Requests a flooder sends: far more than the server may hold at the defaults (maxPendingRequests
// 1024, sendHighWaterMark 1 MiB), and enough that holding them all shows (about 300 MB of RSS
// without flow control).
const FLOOD = 200_000;
// How far the server's peak RSS may rise over its baseline while one peer floods it: the bound
// docs/reliability.md gives per connection at the defaults (tens of MB), with room for the
// collector's young generation.
const FLOOD_BOUND = 64 * MiB * sanitizerScale;

interface Stats {
  rss: number;
  peakRss: number;
  held: number;
  handled: number;
  pending: number;
}

async function startServer(t: import('node:test').TestContext): Promise<{ server: Fixture; name: string; stats: () => Promise<Stats> }> {
  const name = uniqueName();
  const server = spawnFixture(t, 'rpc-bounds-server', [name], process.env, { execArgv: ['--expose-gc'] });
  await server.next('listening');
  let queue = Promise.resolve() as Promise<unknown>;
  const stats = () => {
    const next = queue.then(() => {
      server.send({ type: 'stats' });
      return server.next<Stats>('stats');
    });
    queue = next;
    return next;
  };
  return { server, name, stats };
}

/** One request frame as docs/channel.md lays it out: [1][u32 id][u16 n][method][body]. */
function requestFrame(method: string, id: number, body: string): Buffer {
  const m = Buffer.from(method);
  const b = Buffer.from(body);
  const frame = Buffer.alloc(4 + 1 + 4 + 2 + m.length + b.length);
  frame.writeUInt32BE(frame.length - 4, 0);
  frame[4] = 1;
  frame.writeUInt32BE(id, 5);
  frame.writeUInt16BE(m.length, 9);
  m.copy(frame, 11);
  b.copy(frame, 11 + m.length);
  return frame;
}

/** Requests 1..count for `method`, each with a small body, back to back in one buffer. */
function requestFlood(method: string, count: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => requestFrame(method, i + 1, `{"n":${i + 1},"pad":"0123456789"}`)));
}

/** Reads replies from a raw socket: resolves once replies 1..count have each come exactly once, with their own body. */
async function readReplies(socket: Socket, count: number): Promise<void> {
  const { FrameReader } = await import('#internal/channel/frame-reader.js');
  const seen = new Uint8Array(count + 1);
  let replies = 0;
  await new Promise<void>((resolve, reject) => {
    const reader = new FrameReader(1 << 20, (buffer, start, end) => {
      try {
        assert.equal(buffer[start], 2, 'a reply');
        const id = buffer.readUInt32BE(start + 1);
        assert.ok(id >= 1 && id <= count && seen[id] === 0, `reply ${id} once`);
        assert.deepEqual(JSON.parse(buffer.toString('utf8', start + 5, end)), { n: id, pad: '0123456789' });
        seen[id] = 1;
        if (++replies === count) resolve();
      } catch (error) {
        reject(error);
      }
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`the connection closed after ${replies} of ${count} replies`)));
  });
}

/** Stats until the server has taken no more requests for a while (it stopped reading the flooder) or has taken them all. */
async function untilStill(stats: () => Promise<Stats>, count: number): Promise<Stats> {
  let last = await stats();
  for (;;) {
    await sleep(250);
    const now = await stats();
    if (now.handled === last.handled || now.handled >= count) return now;
    last = now;
  }
}

test('a client that floods requests and never reads the replies: the server stops reading it, stays bounded, serves others, and every reply arrives', { timeout: 120_000 }, async (t) => {
  const { name, stats } = await startServer(t);
  const base = await stats();
  const flooder = await connect(nsName(name));
  flooder.write(requestFlood('echo', FLOOD)); // and no reading
  const still = await untilStill(stats, FLOOD);
  t.diagnostic(`server took ${still.handled} of ${FLOOD} requests before it stopped reading; RSS ${Math.round(base.rss / MiB)} -> peak ${Math.round(still.peakRss / MiB)} MiB`);
  assert.ok(still.handled < FLOOD, `the server stopped reading the flooder (it took ${still.handled} of ${FLOOD} requests)`);

  const other = await connectRpc(nsName(name));
  assert.deepEqual(await other.request('echo', { from: 'another client' }), { from: 'another client' }, 'another client is served meanwhile');
  await other.close();

  await readReplies(flooder, FLOOD); // every reply, once each
  const end = await stats();
  assert.equal(end.handled, FLOOD + 1); // and the other client's request
  assert.ok(end.peakRss - base.rss < FLOOD_BOUND, `the server's peak RSS rose ${Math.round((end.peakRss - base.rss) / MiB)} MiB over its baseline (bound ${FLOOD_BOUND / MiB} MiB)`);
  flooder.destroy();
});

test('a flood of requests to a slow async handler: at most maxPendingRequests wait, the rest stay unread until they are answered', { timeout: 120_000 }, async (t) => {
  const { server, name, stats } = await startServer(t);
  const base = await stats();
  const flooder = await connect(nsName(name));
  flooder.write(requestFlood('slow', FLOOD));
  const still = await untilStill(stats, FLOOD);
  t.diagnostic(`${still.pending} requests waiting on the handler; RSS ${Math.round(base.rss / MiB)} -> peak ${Math.round(still.peakRss / MiB)} MiB`);
  assert.ok(still.pending <= 1024, `at most maxPendingRequests (1024) wait on the handler; ${still.pending} did`);
  assert.ok(still.pending > 0);

  const other = await connectRpc(nsName(name));
  assert.deepEqual(await other.request('echo', 'served'), 'served', 'another client is served meanwhile');
  await other.close();

  server.send({ type: 'open' });
  await readReplies(flooder, FLOOD);
  const end = await stats();
  assert.equal(end.handled, FLOOD + 1); // and the other client's request
  assert.ok(end.peakRss - base.rss < FLOOD_BOUND, `the server's peak RSS rose ${Math.round((end.peakRss - base.rss) / MiB)} MiB over its baseline (bound ${FLOOD_BOUND / MiB} MiB)`);
  flooder.destroy();
});

test('a frame trickled a byte a write: the server holds about its size, not a Buffer per byte', { timeout: 120_000 }, async (t) => {
  const { name, stats } = await startServer(t);
  const size = 100_000;
  const body = `{"n":1,"pad":"${'x'.repeat(size)}"}`;
  const frame = requestFrame('echo', 1, body);
  const socket = await connect(nsName(name));
  socket.write(frame.subarray(0, 12)); // the header and the method: the server now expects the frame
  await sleep(50);
  const base = await stats();
  for (let i = 12; i < frame.length - 1; i++) {
    socket.write(frame.subarray(i, i + 1));
    await nextTurn(); // one byte a write, each on its own turn of the loop
  }
  await sleep(100);
  const during = await stats();
  const grown = during.held - base.held;
  t.diagnostic(`${frame.length - 13} bytes trickled: the server holds ${Math.round(grown / 1024)} KiB more (RSS ${Math.round((during.rss - base.rss) / MiB)} MiB more)`);
  assert.ok(grown < 4 * frame.length, `the unfinished frame costs at most 4x its size (${grown} bytes held for ${frame.length})`);
  const reply = new Promise<Buffer>((resolve) => {
    const parts: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      parts.push(chunk);
      const all = Buffer.concat(parts);
      if (all.length >= 4 && all.length >= 4 + all.readUInt32BE(0)) resolve(all);
    });
  });
  socket.write(frame.subarray(frame.length - 1));
  const bytes = await reply;
  assert.equal(bytes[4], 2);
  assert.equal(bytes.toString('utf8', 9), body, 'the frame arrived whole');
  socket.destroy();
});

test('FrameReader: held mid-read, it keeps the rest and what comes meanwhile, unread and in order, with their descriptors', async () => {
  const { FrameReader } = await import('#internal/channel/frame-reader.js');
  const { FrameWriter } = await import('#internal/channel/frame-writer.js');
  const writer = new FrameWriter();
  const texts = ['a', 'bb', 'ccc', 'dddd', 'eeeee', 'ffffff'];
  for (const text of texts) writer.add(text, 100);
  const stream = Buffer.concat(writer.take());
  for (let cut = 1; cut < stream.length; cut++) {
    const got: Array<[string, string[]]> = [];
    const reader = new FrameReader<string>(100, (buffer, start, end, fds) => {
      got.push([buffer.toString('utf8', start, end), fds ?? []]);
      if (got.length % 2 === 1) reader.hold(); // stop after every other frame
    }, (buffer, spans, count) => {
      for (let i = 0; i < count; i++) {
        got.push([buffer.toString('utf8', spans[2 * i]!, spans[2 * i + 1]!), []]);
        if (got.length % 2 === 1) {
          reader.hold();
          return i + 1;
        }
      }
      return count;
    });
    reader.push(stream.subarray(0, cut), ['x']);
    reader.push(stream.subarray(cut), ['y']);
    while (reader.held) reader.resume();
    assert.deepEqual(got.map(([text]) => text), texts, `cut at ${cut}`);
    assert.deepEqual(got.flatMap(([, fds]) => fds), ['x', 'y'], `cut at ${cut}: each read's descriptors once`);
    assert.equal(got.at(-1)![1].at(-1), 'y', `cut at ${cut}: the last read's descriptors go with the last frame`);
    assert.equal(reader.backlogged, false);
    assert.equal(reader.pending, 0);
  }
});
