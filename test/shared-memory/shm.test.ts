/**
 * Shared-memory channels (docs/shared-memory.md) across real processes: a checksummed exchange
 * both ways at once, a peer killed mid-message, a Python peer written from the layout spec, a
 * hostile peer scribbling over the shared memory, a worker thread as one side, descriptors.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Channel, InterprocessError, listenUnix, unixSocketPair, type UnixSocket } from '#internal/index.js';
import { requireNative } from '#internal/native/addon.js';
import type { NativeSharedMemory } from '#internal/shared-memory/transport.js';
import { HEADER_SIZE, MAGIC, VERSION } from '#internal/shared-memory/ring.js';
import { closeFd, closeFdQuietly } from '#internal/native/fds.js';
import { openFds, python, scratchDir, sanitizerScale, spawnFixture, testSocketPath } from '../helpers.js';
import { countFor, exchange, message } from './messages.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', '..');
const PY_PEER = path.join(root, 'test', 'fixtures', 'shm_peer.py');
const windows = process.platform === 'win32';
const skip = windows && 'shared memory is Unix-only for now (the Windows test checks ERR_INTERPROCESS_UNSUPPORTED)';
const RUN_PY = `import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')`;
const FULL = process.env.INTERPROCESS_FAULT_FULL === '1';

async function accepted(socketPath: string): Promise<{ next: () => Promise<UnixSocket>; close: () => Promise<void> }> {
  const listener = await listenUnix(socketPath);
  const iterator = listener[Symbol.asyncIterator]();
  return { next: async () => (await iterator.next()).value as UnixSocket, close: () => listener.close() };
}

test('Windows: transport shared-memory is ERR_INTERPROCESS_UNSUPPORTED, naming what to use', { skip: !windows && 'the Windows error (the transport itself is tested on Unix here)' }, () => {
  assert.throws(
    () => new Channel(new PassThrough(), { transport: 'shared-memory' }),
    (error: InterprocessError) => error.code === 'ERR_INTERPROCESS_UNSUPPORTED' && /default transport/.test(error.message),
  );
});

test('both ways at once between processes: messages of 0 B to 8 MiB, checksummed', { skip, timeout: 600_000 }, async (t) => {
  const fdsBefore = openFds();
  const bytes = FULL ? 512 << 20 : 32 << 20; // each way: 1 GiB in all with INTERPROCESS_FAULT_FULL=1
  const socketPath = testSocketPath(t, 's');
  const listener = await accepted(socketPath);
  const peer = spawnFixture(t, 'shm-peer', [socketPath, 'exchange', String(bytes)]);
  const socket = await listener.next();
  await listener.close();
  const channel = new Channel<Buffer>(socket, { transport: 'shared-memory', codec: 'raw', maxMessageSize: 16 << 20 });
  const count = countFor(bytes);
  const ours = await exchange(channel, count);
  const report = await peer.next<{ received: number; sentDigest: string; receivedDigest: string; bad: number }>('done');
  assert.equal(ours.firstBad, -1, `message ${ours.firstBad} arrived intact (${ours.bad} did not)`);
  assert.equal(ours.received, count);
  assert.ok(ours.bytes >= bytes);
  assert.equal(report.bad, 0);
  assert.equal(report.received, count);
  assert.equal(report.receivedDigest, ours.sentDigest, 'the peer received exactly what we sent');
  assert.equal(ours.receivedDigest, report.sentDigest, 'we received exactly what the peer sent');
  await peer.exited;
  if (!channel.closed) await new Promise((resolve) => channel.once('close', resolve));
  assert.equal(channel.error, null);
  assert.equal(openFds(), fdsBefore, 'no descriptor left open (regions, doorbells, socket)');
});

test('a peer SIGKILLed in the middle of a message: ECONNRESET at once, no hang', { skip, timeout: 60_000 }, async (t) => {
  const socketPath = testSocketPath(t, 's');
  const listener = await accepted(socketPath);
  // The peer (test/fixtures/shm_peer.py, mode 'half') writes the first piece of a message, says
  // 'half', and waits: it is killed there, its message unfinished.
  const peer = python(t, RUN_PY, [PY_PEER, socketPath, 'half']);
  const socket = await listener.next();
  await listener.close();
  const channel = new Channel<Buffer>(socket, { transport: 'shared-memory', codec: 'raw' });
  let said = '';
  await new Promise<void>((resolve) => peer.stdout!.on('data', (d) => ((said += d), said.includes('half') && resolve())));
  peer.output.catch(() => {}); // it dies by SIGKILL: no exit code
  peer.kill('SIGKILL');
  const started = Date.now();
  await assert.rejects(
    (async () => {
      for await (const body of channel) assert.fail(`no message was whole, got ${body.length} bytes`);
    })(),
    (error: InterprocessError) => error instanceof InterprocessError && ['ECONNRESET', 'ERR_INTERPROCESS_TRUNCATED'].includes(error.code),
  );
  assert.ok(Date.now() - started < 20_000, 'noticed through the socket, not a timeout');
  assert.equal(channel.closed, true);
});

test('close() waiting for a peer that never says hello finishes once the channel is destroyed', { skip, timeout: 60_000 }, async (t) => {
  const socketPath = testSocketPath(t, 's');
  const listener = await accepted(socketPath);
  // The peer (shm_peer.py, mode 'mute') connects and never sends its hello: our end cannot be written.
  const peer = python(t, RUN_PY, [PY_PEER, socketPath, 'mute']);
  const socket = await listener.next();
  await listener.close();
  const channel = new Channel<Buffer>(socket, { transport: 'shared-memory', codec: 'raw' });
  await new Promise<void>((resolve) => peer.stdout!.on('data', (d) => String(d).includes('connected') && resolve()));
  let closed = false;
  const closing = channel.close().then(() => (closed = true));
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(closed, false, 'the end waits for the peer');
  channel.destroy();
  const timedOut = Symbol('timed out');
  const outcome = await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 10_000, timedOut))]);
  assert.notEqual(outcome, timedOut, 'close() finished once the channel was destroyed');
  assert.equal(channel.closed, true);
  await peer.output;
});

test('sends queued before the peer\'s hello fail with EPIPE once its socket ends, never wait forever', { skip, timeout: 60_000 }, async (t) => {
  const socketPath = testSocketPath(t, 's');
  const listener = await accepted(socketPath);
  // The peer (shm_peer.py, mode 'hangup') takes our hello and closes without one of its own.
  const peer = python(t, RUN_PY, [PY_PEER, socketPath, 'hangup']);
  const socket = await listener.next();
  await listener.close();
  const channel = new Channel<Buffer>(socket, { transport: 'shared-memory', codec: 'raw' });
  channel.on('error', () => {});
  const sent = channel.send(Buffer.alloc(1000, 1));
  const timedOut = new Promise((_, reject) => setTimeout(reject, 20_000, new Error('the send still waits 20 s after the peer hung up')));
  await assert.rejects(Promise.race([sent, timedOut]), { code: 'EPIPE' });
  assert.equal((await peer.output).trim(), 'hung up');
  if (!channel.closed) await new Promise((resolve) => channel.once('close', resolve));
});

test('a Python peer written from the layout spec echoes every message, and ends in order', { skip, timeout: 120_000 }, async (t) => {
  const socketPath = testSocketPath(t, 's');
  const listener = await accepted(socketPath);
  const peer = python(t, RUN_PY, [PY_PEER, socketPath, 'echo']);
  const socket = await listener.next();
  await listener.close();
  const channel = new Channel<Buffer>(socket, { transport: 'shared-memory', codec: 'raw', maxMessageSize: 16 << 20 });
  const count = countFor(12 << 20);
  const sending = (async () => {
    for (let i = 0; i < count; i++) await channel.send(message(i));
    await channel.close();
  })();
  let index = 0;
  for await (const body of channel.iterator({ closeOnReturn: false })) {
    assert.ok(body.equals(message(index)), `message ${index} came back intact`);
    index++;
    // Each side closes once it has everything both ways: the first end would close the other side
    // (a channel finishes its side when the peer's ends), failing sends it had not made yet.
    if (index === count) break;
  }
  await sending;
  await channel.close();
  assert.equal(index, count);
  assert.equal((await peer.output).trim(), 'echoed');
});

test('a peer scribbling random bytes over the shared memory for 10 s: clear errors, no crash, bounded memory', { skip, timeout: 120_000 }, async (t) => {
  const socketPath = testSocketPath(t, 's');
  const fdsBefore = openFds();
  const listener = await listenUnix(socketPath);
  const seconds = 10;
  const peer = python(t, RUN_PY, [PY_PEER, socketPath, 'scribble', String(seconds)]);
  const codes = new Map<string, number>();
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  let channels = 0;
  // The scribbler connects again each time we give up on a connection: one channel after another
  // for the whole 10 s, each sending into the ring it scribbles over and reading from the one it
  // scribbles over.
  const deadline = Date.now() + seconds * 1000;
  const done = peer.output;
  for await (const socket of listener.iterator({ closeOnReturn: false })) {
    channels++;
    const channel = new Channel<Buffer>(socket, { transport: 'shared-memory', codec: 'raw', maxMessageSize: 1 << 20, highWaterMark: 16, ringSize: 1 << 16 });
    const closed = new Promise<unknown>((resolve) => channel.once('close', resolve));
    channel.on('error', () => {});
    let n = 0;
    const sending = (async () => {
      // Until a send fails: once the channel is closing, every send rejects at once, and a loop
      // that went on would spin in microtasks, starving the turn that finishes the close.
      for (let sent = true; sent && !channel.closed; ) {
        sent = await channel.send(Buffer.alloc(1000 + (n % 3000), n++ & 255)).then(() => true, () => false);
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      }
    })();
    const reading = (async () => {
      for await (const body of channel.iterator({ closeOnReturn: false })) assert.ok(body.length <= 1 << 20);
    })().catch((error: unknown) => error);
    const error = await closed;
    await sending;
    await reading;
    // No error: scribbled words that read as the writer's "ended" state end the channel as a peer may.
    const code = error === undefined ? 'ended' : error instanceof InterprocessError ? error.code : `not typed: ${String(error)}`;
    codes.set(code, (codes.get(code) ?? 0) + 1);
    if (Date.now() > deadline) break;
  }
  await listener.close();
  const report = await done;
  assert.match(report, /scribbled \d+ connections \d+/);
  const allowed = new Set(['ended', 'ERR_INTERPROCESS_SHARED_MEMORY', 'ECONNRESET', 'EPIPE', 'ERR_INTERPROCESS_FRAME_TOO_LARGE', 'ERR_INTERPROCESS_TRUNCATED', 'ERR_INTERPROCESS_CLOSED']);
  for (const [code, count] of codes) assert.ok(allowed.has(code), `every channel ended with a typed error (${code} x${count})`);
  assert.ok((codes.get('ERR_INTERPROCESS_SHARED_MEMORY') ?? 0) > 0, `the broken layout was reported: ${JSON.stringify([...codes])}`);
  assert.ok(channels > 1, `channels: ${channels}`);
  assert.ok(rssPeak - rssBefore < 256 * 1024 * 1024 * sanitizerScale, `memory stayed bounded (${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MiB more)`);
  assert.equal(openFds(), fdsBefore, 'no descriptor left open');
  t.diagnostic(`${channels} channels over 10 s; ${report.trim()}; endings ${JSON.stringify([...codes])}`);
});

test('a wrong hello (missing, extra or wrong descriptors, a FIFO or plain file as the memory, a huge or odd ring): typed error, nothing mapped, no descriptor left', { skip }, async (t) => {
  const shm = (requireNative('the test') as unknown as { sharedMemory: NativeSharedMemory }).sharedMemory;
  const dir = scratchDir(t);
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, Buffer.alloc(HEADER_SIZE + 65536));
  const hello = (capacity: number, magic = MAGIC): Buffer => {
    const words = new Uint32Array([magic, VERSION, HEADER_SIZE, capacity]);
    return Buffer.from(words.buffer); // the machine's byte order, as the layout says
  };
  // Descriptors opened for one case, closed once it is sent.
  const opened: number[] = [];
  const open = (fd: number): number => (opened.push(fd), fd);
  // A region made as a peer would (sealed memfd / shm object) of `size` bytes, its header written
  // or not: [memory, doorbell write end, doorbell read end].
  const region = (size: number, header: boolean): number[] => {
    const created = shm.create(size);
    opened.push(...created);
    const fds = [created[0], created[2], created[1]];
    if (header) {
      const mapped = shm.map(fds[0], size);
      for (const [offset, value] of [[0, MAGIC], [4, VERSION], [8, HEADER_SIZE], [12, size - HEADER_SIZE]] as const) mapped.store(offset, value);
      mapped.unmap();
    }
    return fds;
  };
  const cases: Array<{ name: string; code: string; send: () => { data: Buffer; fds: number[] } }> = [
    { name: 'no descriptors', code: 'ERR_INTERPROCESS_SHARED_MEMORY', send: () => ({ data: hello(65536), fds: [] }) },
    { name: 'one descriptor', code: 'ERR_INTERPROCESS_SHARED_MEMORY', send: () => ({ data: hello(65536), fds: region(HEADER_SIZE + 65536, true).slice(0, 1) }) },
    { name: 'three descriptors', code: 'ERR_INTERPROCESS_SHARED_MEMORY', send: () => ({ data: hello(65536), fds: region(HEADER_SIZE + 65536, true) }) },
    { name: 'descriptors with half a hello', code: 'ERR_INTERPROCESS_SHARED_MEMORY', send: () => ({ data: hello(65536).subarray(0, 8), fds: region(HEADER_SIZE + 65536, true).slice(0, 2) }) },
    { name: 'the doorbell as the memory', code: 'ERR_INTERPROCESS_PROTOCOL', send: () => ({ data: hello(65536), fds: region(HEADER_SIZE + 65536, true).slice(1, 3) }) },
    { name: 'more than a hello', code: 'ERR_INTERPROCESS_SHARED_MEMORY', send: () => ({ data: Buffer.concat([hello(65536), Buffer.alloc(4)]), fds: region(HEADER_SIZE + 65536, true).slice(0, 2) }) },
    { name: 'another magic', code: 'ERR_INTERPROCESS_SHARED_MEMORY', send: () => ({ data: hello(65536, 0x12345678), fds: region(HEADER_SIZE + 65536, true).slice(0, 2) }) },
    { name: 'a ring of 2 GiB', code: 'ERR_INTERPROCESS_SHARED_MEMORY', send: () => ({ data: hello(2 ** 31), fds: region(HEADER_SIZE + 65536, true).slice(0, 2) }) },
    { name: 'a ring of 0 bytes', code: 'ERR_INTERPROCESS_SHARED_MEMORY', send: () => ({ data: hello(0), fds: region(HEADER_SIZE + 65536, true).slice(0, 2) }) },
    { name: 'a ring not a power of two', code: 'ERR_INTERPROCESS_SHARED_MEMORY', send: () => ({ data: hello(65536 + 8), fds: region(HEADER_SIZE + 65536, true).slice(0, 2) }) },
    { name: 'a 1 GiB ring announced over 64 KiB of memory', code: 'ERR_INTERPROCESS_PROTOCOL', send: () => ({ data: hello(2 ** 30), fds: region(HEADER_SIZE + 65536, true).slice(0, 2) }) },
    { name: 'a header that is not the hello\'s', code: 'ERR_INTERPROCESS_SHARED_MEMORY', send: () => ({ data: hello(65536), fds: region(HEADER_SIZE + 65536, false).slice(0, 2) }) },
    { name: 'a FIFO as the memory', code: 'ERR_INTERPROCESS_PROTOCOL', send: () => ({ data: hello(65536), fds: [open(fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)), region(HEADER_SIZE + 65536, true)[1]!] }) },
    { name: 'a plain file as the memory', code: 'ERR_INTERPROCESS_PROTOCOL', send: () => ({ data: hello(65536), fds: [open(fs.openSync(file, 'r+')), region(HEADER_SIZE + 65536, true)[1]!] }) },
  ];
  const fdsBefore = openFds();
  for (const c of cases) {
    const [a, b] = unixSocketPair();
    const channel = new Channel<Buffer>(a, { transport: 'shared-memory', codec: 'raw', ringSize: 65536 });
    const closed = new Promise<unknown>((resolve) => channel.once('close', resolve));
    const sending = channel.send(Buffer.from('never delivered')).catch((error: unknown) => error);
    const { data, fds } = c.send();
    try {
      await b.send(data, { fds });
    } finally {
      for (const fd of new Set(opened.splice(0))) closeFdQuietly(fd);
    }
    const error = (await closed) as InterprocessError;
    assert.equal(error?.code, c.code, `${c.name}: ${String(error)}`);
    assert.equal(((await sending) as InterprocessError).code, c.code, `${c.name}: the queued send fails with it`);
    b.destroy();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(openFds(), fdsBefore, 'no descriptor left open (received ones closed, nothing mapped kept)');
});

test('spin: round trips with a peer that spins too, every message intact; an idle channel spins only once it falls idle, then costs no CPU', { skip, timeout: 60_000 }, async (t) => {
  const socketPath = testSocketPath(t, 's');
  const listener = await accepted(socketPath);
  const peer = spawnFixture(t, 'shm-peer', [socketPath, 'echo', '200']);
  const socket = await listener.next();
  await listener.close();
  const channel = new Channel<Buffer>(socket, { transport: 'shared-memory', codec: 'raw', spin: 200 });
  const replies = channel[Symbol.asyncIterator]();
  for (let i = 0; i < 2000; i++) {
    const body = message(i % 12); // 0 B to 32 KiB
    await channel.send(body);
    const { value } = await replies.next();
    assert.ok(value.equals(body), `round trip ${i} intact`);
  }
  // Idle for a second: each side spun 200 µs when it fell idle, then sleeps on its doorbell.
  const idle = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const used = process.cpuUsage(idle);
  assert.ok(used.user + used.system < 150_000 * sanitizerScale, `idle for 1 s: ${((used.user + used.system) / 1000).toFixed(1)} ms of CPU here`);
  await channel.close();
  const { user, system } = await peer.next<{ user: number; system: number }>('cpu');
  t.diagnostic(`the echoing peer used ${((user + system) / 1000).toFixed(0)} ms of CPU for 2000 round trips and 1 s idle`);
  await peer.exited;
});

test('spin: out of range or not a number is ERR_INVALID_ARG_VALUE, before anything is made', { skip }, () => {
  const [a] = unixSocketPair();
  try {
    const before = openFds();
    for (const spin of [-1, 1001, Number.NaN, '5' as unknown as number, Infinity]) {
      assert.throws(() => new Channel(a, { transport: 'shared-memory', spin }), { code: 'ERR_INVALID_ARG_VALUE' });
    }
    assert.equal(openFds(), before, 'no region or doorbell made for a refused option');
  } finally {
    a.destroy();
  }
});

test('a worker thread as one side', { skip, timeout: 60_000 }, async () => {
  const [a, b] = unixSocketPair();
  // The worker's own descriptor for b's socket: out of this environment's registry, its to own.
  const native = requireNative('the test');
  const fd = native.dupCloexec(b.fd);
  native.releaseFd(fd);
  b.destroy();
  const worker = new Worker(
    `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.entry).then(async ({ Channel, unixSocketFromFd }) => {
      const channel = new Channel(unixSocketFromFd(workerData.fd), { transport: 'shared-memory', codec: 'raw' });
      for await (const body of channel) await channel.send(Buffer.concat([Buffer.from('echo:'), body]));
    });
    `,
    { eval: true, workerData: { fd, entry: new URL('../../../dist/index.js', import.meta.url).href } },
  );
  const channel = new Channel<Buffer>(a, { transport: 'shared-memory', codec: 'raw' });
  for (const size of [0, 5, 1 << 20, 9 << 20]) {
    await channel.send(Buffer.alloc(size, 7));
  }
  let n = 0;
  for await (const body of channel) {
    assert.equal(body.subarray(0, 5).toString(), 'echo:');
    assert.equal(body.length, [0, 5, 1 << 20, 9 << 20][n]! + 5);
    if (++n === 4) break;
  }
  await worker.terminate();
});

test('arguments: ringSize is a power of two in range, and the stream a Unix stream socket', { skip }, () => {
  const [a] = unixSocketPair();
  try {
    for (const ringSize of [1000, 4095, 3 << 20, 2 ** 31, -1, 1.5]) {
      assert.throws(() => new Channel(a, { transport: 'shared-memory', ringSize }), { code: 'ERR_INVALID_ARG_VALUE' });
    }
    assert.throws(() => new Channel({ readable: process.stdin, writable: process.stdout }, { transport: 'shared-memory' }), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => new Channel(a, { transport: 'carrier-pigeon' as 'stream' }), { code: 'ERR_INVALID_ARG_VALUE' });
  } finally {
    a.destroy();
  }
});

test('a region: a view of the mapping without a copy; unmap() detaches it (views read as empty) and later calls fail typed', { skip }, () => {
  const shm = (requireNative('the test') as unknown as { sharedMemory: NativeSharedMemory }).sharedMemory;
  const fds = shm.create(8192);
  try {
    const a = shm.map(fds[0], 8192);
    const b = shm.map(fds[0], 8192);
    const view = new Uint8Array(a.buffer);
    view[500] = 42;
    assert.equal(new Uint8Array(b.buffer)[500], 42, 'both mappings are the same memory');
    a.store(128, 7);
    assert.equal(b.load(128), 7);
    a.unmap();
    a.unmap(); // idempotent
    assert.equal(view.length, 0, 'a view of an unmapped region is empty, never a dangling pointer');
    assert.equal(a.buffer.byteLength, 0);
    assert.throws(() => a.load(128), { code: 'ERR_INTERPROCESS_CLOSED' });
    assert.throws(() => b.load(8192), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => b.store(130, 1), { code: 'ERR_OUT_OF_RANGE' });
    b.unmap();
  } finally {
    for (const fd of new Set(fds)) closeFd(fd);
  }
});

test('a mapping the peer could shrink (no F_SEAL_SHRINK), or smaller than announced, is refused', { skip: skip || (process.platform !== 'linux' && 'seals are Linux memfd') }, (t) => {
  const shm = (requireNative('the test') as unknown as { sharedMemory: NativeSharedMemory }).sharedMemory;
  const file = path.join(scratchDir(t), 'region');
  fs.writeFileSync(file, Buffer.alloc(8192));
  const fd = fs.openSync(file, 'r+');
  try {
    assert.throws(() => shm.map(fd, 8192), { code: 'ERR_INTERPROCESS_PROTOCOL', message: /F_SEAL_SHRINK/ });
    const fds = shm.create(8192);
    try {
      assert.throws(() => shm.map(fds[0], 16384), { code: 'ERR_INTERPROCESS_PROTOCOL', message: /smaller/ });
    } finally {
      for (const f of new Set(fds)) closeFd(f);
    }
  } finally {
    fs.closeSync(fd);
  }
});
