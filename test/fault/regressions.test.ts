// Fault scenarios of defects found by the outside review (issue 13) and fixed since: each would
// fail again if its bound broke. Every scenario is bounded so that it fails, not hangs
// or exhausts the machine, while the defect is there: the RPC flood stops its flooder at the bound,
// the receivers that used to crash run in child processes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Channel, type LocalSocket, type UnixSocket, connectRpc, listen, listenUnix, nsName, serveRpc, unixSocketPair } from 'interprocess';
import { patternBytes, readAll, sanitizerScale, spawnFixture, uniqueName } from '../helpers.js';
import { MiB, baseline, fdsBack, figure, mib, rssSampler, typed } from './fault.js';

const notOnWindows = process.platform === 'win32' && 'Unix sockets (stream, seqpacket, datagram) do not exist on Windows';
const limit = <T>(ms: number, what: string) => sleep(ms, undefined, { ref: false }).then((): T => assert.fail(`${what}: not within ${ms} ms`));

test('RPC: a client that floods requests and never reads the replies is held back; the server\'s memory stays bounded, others are served', { skip: notOnWindows, timeout: 180_000 }, async (t) => {
  const BOUND = 150 * MiB;
  const raw = uniqueName('rpc-flood');
  const server = await serveRpc(nsName(raw));
  t.after(async () => {
    for (const channel of server.channels) channel.channel.destroy();
    await server.close();
  });
  server.handle('echo', (body) => body);
  await sleep(20);
  const rss = rssSampler();
  const flooder = spawnFixture(t, 'fault-rpc-flood', [raw, '1000000']);
  let sent = 0;
  let settled = false;
  void (async () => {
    for (;;) {
      const progress = await flooder.next<{ sent: number }>('progress').catch(() => null);
      if (!progress) return;
      sent = progress.sent;
    }
  })();
  const outcome = await Promise.race([
    flooder.next<{ sent: number }>('done').then(() => 'all sent'),
    (async () => {
      while (rss.peak() < BOUND && !settled) await sleep(50);
      return 'over the bound';
    })(),
    sleep(20_000, undefined, { ref: false }).then(() => 'held back'),
  ]);
  settled = true;
  flooder.child.kill('SIGKILL');
  const peak = rss.stop();
  // Others are still served meanwhile.
  const other = await connectRpc(nsName(raw));
  assert.equal(await Promise.race([other.request('echo', 'other'), limit<string>(10_000, 'another client')]), 'other');
  await other.close();
  figure(`RPC flood without reading: ${sent} requests written, server peak RSS +${mib(peak)} (${outcome})`);
  assert.ok(peak < BOUND, `the server's memory stays within ${mib(BOUND)} (+${mib(peak)}, ${sent} requests)`);
  assert.notEqual(outcome, 'all sent', 'the flooder is held back, not answered into memory');
});

// Not under the sanitizers: each byte is a syscall and a callback that ASan slows past any useful
// bound, and the test measures memory, which ASan inflates. It runs on every Node version.
test('a frame trickled one byte per write costs O(its size); a length header alone allocates nothing', { timeout: 240_000, skip: sanitizerScale > 1 && 'measures memory per byte, which ASan distorts (run in every non-sanitizer pass)' }, async (t) => {
  // 30 KB: each byte is a read and a callback on the server, slow on a loaded machine; the old
  // cost (about 150 bytes held a byte) would still be 30 times over the bound.
  const SIZE = 30_000;
  const raw = uniqueName('trickle');
  await using listener = await listen(nsName(raw));
  const channels: Array<Channel<Buffer>> = [];
  listener.on('connection', (conn: LocalSocket) => {
    conn.on('error', () => {});
    channels.push(new Channel<Buffer>(conn, { codec: 'raw' }));
  });
  await sleep(20);
  const before = process.memoryUsage();
  const trickler = spawnFixture(t, 'fault-trickle', [raw, String(SIZE)]);
  await Promise.race([trickler.next('almost'), limit(90_000, 'the trickle')]);
  const during = process.memoryUsage();
  const grewBuffers = during.arrayBuffers - before.arrayBuffers;
  const grewRss = during.rss - before.rss;
  const message = once(channels[0]!, 'message');
  trickler.send('finish');
  const [received] = (await Promise.race([message, limit<[Buffer]>(30_000, 'the trickled frame')])) as [Buffer];
  assert.ok(received.equals(patternBytes(SIZE, 7)), 'the frame arrives whole');
  // A header that claims 16 MiB - 1 with 10 bytes behind it.
  const beforeHeader = process.memoryUsage().arrayBuffers;
  const liar = spawnFixture(t, 'fault-trickle', [raw, String(16 * MiB - 1), 'header']);
  await Promise.race([liar.next('almost'), limit(30_000, 'the header')]);
  await sleep(50);
  const forHeader = process.memoryUsage().arrayBuffers - beforeHeader;
  figure(`trickled ${SIZE}-byte frame: +${mib(grewBuffers)} of buffers, RSS +${mib(grewRss)} before its last byte; a 16 MiB header alone: +${mib(forHeader)} of buffers`);
  for (const channel of channels) channel.destroy();
  // 4x the frame (what FrameReader may hold) plus the socket's own read buffers; the old cost was
  // about 150 bytes held a byte received (4.5 MB here).
  assert.ok(grewBuffers < 4 * SIZE + 512 * 1024, `buffers held for the unfinished frame stay O(its size) (+${mib(grewBuffers)} for ${SIZE} bytes)`);
  assert.ok(grewRss < 32 * MiB, `RSS held for the unfinished frame stays small (+${mib(grewRss)})`);
  assert.ok(forHeader < 1 * MiB, `nothing is allocated from a length header alone (+${mib(forHeader)})`);
});

for (const type of ['seqpacket', 'stream'] as const) {
  test(`unix ${type}: a peer that resets with our data unread: its messages first, then the end or a typed ECONNRESET, nothing hangs or leaks`, { skip: notOnWindows, timeout: 60_000 }, async (t) => {
    const before = await baseline(t);
    const raw = uniqueName(`reset-${type}`);
    const listener = await listenUnix(nsName(raw), { type });
    t.after(() => listener.close());
    const peer = spawnFixture(t, 'fault-unix-peer', [type, raw]);
    const conn = (await listener[Symbol.asyncIterator]().next()).value as UnixSocket;
    t.after(() => conn.close());
    await peer.next('ready');
    for (let i = 0; i < 10; i++) await conn.send(`unread ${i}`); // the peer never reads these
    peer.child.kill('SIGKILL');
    await peer.exited;
    const received: string[] = [];
    let end: unknown = null;
    const start = performance.now();
    for (;;) {
      const outcome = await Promise.race([conn.receive().then((m) => m, (e: unknown) => e), limit<unknown>(10_000, 'receive() after the reset')]);
      if (outcome === null || !(outcome && typeof outcome === 'object' && 'data' in outcome)) {
        end = outcome;
        break;
      }
      received.push(String((outcome as { data: Buffer }).data));
    }
    const ms = performance.now() - start;
    figure(`unix ${type} reset: received ${JSON.stringify(received.join(''))}, then ${end === null ? 'the end' : String(end)} in ${ms.toFixed(1)} ms`);
    assert.equal(received.join('').replace(/;/g, ''), 'm0m1m2', 'the messages sent before the reset arrive');
    assert.ok(end === null || (typed(end) && end.code === 'ECONNRESET'), `the end or ECONNRESET, got ${String(end)}`);
    assert.equal(await Promise.race([conn.receive().catch(() => null), limit<null>(5_000, 'a later receive()')]), null);
    await conn.close();
    await listener.close();
    const back = await fdsBack(before);
    assert.equal(back.fds, before, 'nothing leaks');
  });
}

/** Sends 'ping' from a Python datagram socket bound to `address` (bytes) and waits for a reply. */
function pythonSender(address: Buffer, to: string): Promise<string> {
  const script = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(bytes.fromhex(sys.argv[1]))
s.settimeout(5)
s.sendto(b'ping', b'\\0' + sys.argv[2].encode())
try:
    print(s.recv(100).decode())
except socket.timeout:
    print('no reply')
`;
  const child = spawn('python3', ['-c', script, address.toString('hex'), to], { stdio: ['ignore', 'pipe', 'inherit'] });
  return readAll(child.stdout).then((b) => String(b).trim());
}

test('a datagram sender\'s address never crashes the receiver and round-trips exactly (NUL inside, not UTF-8)', { skip: notOnWindows, timeout: 60_000 }, async (t) => {
  const addresses: Array<[string, Buffer]> = [
    ['an abstract name with a NUL inside', Buffer.from(`\0a\0b-${process.pid}`)],
    ['an abstract name that is not UTF-8', Buffer.concat([Buffer.from([0, 0xff, 0xfe]), Buffer.from(String(process.pid))])],
  ];
  const results: string[] = [];
  for (const [what, address] of addresses) {
    const raw = uniqueName('dgram-from');
    const receiver = spawnFixture(t, 'fault-dgram-receiver', [raw]);
    await receiver.next('ready');
    const reply = await pythonSender(address, raw);
    const alive = receiver.child.exitCode === null && receiver.child.signalCode === null;
    results.push(`${what}: ${alive ? 'receiver alive' : 'receiver died'}, reply ${JSON.stringify(reply)}`);
    receiver.child.kill('SIGKILL');
  }
  figure(`datagram sender addresses: ${results.join('; ')}`);
  assert.deepEqual(results, addresses.map(([what]) => `${what}: receiver alive, reply "pong"`));
});

test('a socket type that is not a string (a BigInt) is a typed error, not a TypeError from the message', { skip: notOnWindows }, async () => {
  assert.throws(() => unixSocketPair({ type: 10n as never }), (e) => typed(e) && e.code === 'ERR_INVALID_ARG_VALUE');
  await assert.rejects(Promise.resolve().then(() => listenUnix(nsName(uniqueName()), { type: 10n } as never)), (e) => typed(e));
});
