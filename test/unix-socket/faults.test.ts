// Faults a hostile or careless peer can cause, across real processes: a peer that resets the
// connection, senders bound to names no API of ours would make, a listener out of descriptors,
// and a socket closed in the middle of a batch.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { type UnixMessage, type UnixSocket, bindDatagram, listenUnix, nsName, unixSocketPair } from 'interprocess';
import { openFds, scratchDir, uniqueName, python } from '../helpers.js';


// Connects `rounds` times; each time waits for our greeting (left unread), sends N messages and
// closes: the kernel resets the connection, since our data is unread.
const RESETTING_PEER = `
import select, socket, sys
kind = socket.SOCK_SEQPACKET if sys.argv[2] == 'seqpacket' else socket.SOCK_STREAM
rounds, n = int(sys.argv[3]), int(sys.argv[4])
for r in range(rounds):
    s = socket.socket(socket.AF_UNIX, kind)
    s.connect('\\0' + sys.argv[1])
    select.select([s], [], [], 10)  # our greeting is here: leave it unread
    for i in range(n):
        s.send(b'%d.%d;' % (r, i))
    s.close()
print('done')
`;

for (const type of ['seqpacket', 'stream'] as const) {
  test(`a ${type} peer that resets: its messages, then ECONNRESET and the end, over 50 connections with nothing leaked`, { timeout: 60_000 }, async (t) => {
    const name = uniqueName('reset');
    const listener = await listenUnix(nsName(name), { type });
    const rounds = 50;
    const n = 20;
    const baseline = openFds();
    const results: Array<{ data: string; errors: string[]; ended: boolean }> = [];
    const done = new Promise<void>((resolve) => {
      listener.on('connection', (socket: UnixSocket) => {
        const result = { data: '', errors: [] as string[], ended: false };
        results.push(result);
        // A server that closes on 'end', with an 'error' listener.
        socket.on('message', (m: UnixMessage) => (result.data += m.data.toString()));
        socket.on('error', (e) => result.errors.push((e as Error & { code: string }).code));
        socket.on('end', () => {
          result.ended = true;
          void socket.close();
          if (results.length === rounds && results.every((r) => r.ended)) resolve();
        });
        void socket.send('greeting, never read').catch(() => {});
      });
    });
    const peer = python(t, RESETTING_PEER, [name, type, String(rounds), String(n)]);
    await Promise.race([done, sleep(30_000).then(() => assert.fail(`hung: ${results.filter((r) => r.ended).length} of ${results.length} connections ended`))]);
    assert.equal((await peer.output).trim(), 'done');
    for (const [r, result] of results.entries()) {
      const expected = Array.from({ length: n }, (_, i) => `${r}.${i};`).join('');
      assert.equal(result.data, expected, `round ${r}: every message the peer sent before the reset`);
      assert.ok(result.errors.every((code) => code === 'ECONNRESET'), `round ${r}: only ECONNRESET (${result.errors.join()})`);
    }
    assert.ok(results.some((r) => r.errors.length === 1), 'the reset is reported');
    await listener.close();
    await sleep(50);
    assert.equal(openFds(), baseline - 1, 'every connection closed (and the listener)');
  });

  test(`receive() after a ${type} reset: the messages, then ECONNRESET, then null; a pending receive() settles`, async (t) => {
    const name = uniqueName('reset-receive');
    const listener = await listenUnix(nsName(name), { type });
    const accepted = once(listener, 'connection');
    const peer = python(t, RESETTING_PEER, [name, type, '1', '3']);
    const [socket] = (await accepted) as [UnixSocket];
    const pending = socket.receive(); // waiting before anything arrives
    await socket.send('greeting, never read');
    await peer.output;
    let data = '';
    let error: (Error & { code?: string }) | null = null;
    const first = await pending;
    data += first!.data.toString();
    for (;;) {
      try {
        const m = await Promise.race([socket.receive(), sleep(5000).then(() => assert.fail('receive() never settled'))]);
        if (m === null) break;
        data += m.data.toString();
      } catch (e) {
        error = e as Error & { code?: string };
      }
    }
    assert.equal(data, '0.0;0.1;0.2;');
    assert.equal(error?.code, 'ECONNRESET');
    assert.equal(await socket.receive(), null);
    await assert.rejects(socket.send('after the reset'), (e: Error & { code?: string }) => e.code === 'EPIPE' || e.code === 'ECONNRESET');
    await socket.close();
    await listener.close();
  });
}

test('a pending send and drain() settle when the peer resets', async () => {
  const [a, b] = unixSocketPair({ type: 'seqpacket', sendHighWaterMark: 100_000 });
  // Fill b's queue and the kernel: these wait for the receiver, which then closes.
  const sends = Array.from({ length: 2000 }, () => a.send(Buffer.alloc(4096)).then(() => 'sent', (e: Error & { code?: string }) => e.code));
  await sleep(20);
  assert.ok(a.sendQueueLength > 0, 'some sends are waiting');
  const drained = a.drain();
  await b.close();
  const outcomes = await Promise.race([Promise.all(sends), sleep(5000).then(() => assert.fail('a send never settled'))]);
  assert.ok(outcomes.every((o) => o === 'sent' || o === 'ECONNRESET' || o === 'EPIPE'), [...new Set(outcomes)].join());
  assert.ok(outcomes.some((o) => o !== 'sent'), 'the queued ones fail');
  await drained;
  await a.close();
});

// Binds to an arbitrary sun_path (ctypes: Python refuses a path of the full 108 bytes), sends
// one datagram to our receiver, and prints the reply.
const ODD_SENDER = `
import ctypes, socket, struct, sys
addr, to = bytes.fromhex(sys.argv[1]), b'\\0' + sys.argv[2].encode()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sa = struct.pack('H', socket.AF_UNIX) + addr
if ctypes.CDLL(None, use_errno=True).bind(s.fileno(), sa, len(sa)) != 0:
    raise OSError(ctypes.get_errno(), 'bind')
s.settimeout(10)
s.sendto(b'from an odd name', to)
data, frm = s.recvfrom(100)
print(data.decode())
`;

test('senders bound to any address never crash the receiver, and a reply reaches exactly them', { timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  const name = uniqueName('odd-rx');
  const receiver = await bindDatagram(nsName(name));
  const long = path.join(dir, 'x'.repeat(108 - Buffer.byteLength(dir) - 1)); // 108 bytes, no NUL
  const cases: Array<{ bytes: Buffer; exact: boolean; shown: string }> = [
    { bytes: Buffer.from(`\0nul\0inside-${process.pid}`), exact: false, shown: `@nul\\x00inside-${process.pid}` },
    { bytes: Buffer.concat([Buffer.from(`\0bytes-${process.pid}-`), Buffer.from([0xff, 0xfe, 0x80])]), exact: false, shown: `@bytes-${process.pid}-\\xff\\xfe\\x80` },
    { bytes: Buffer.from(`\0plain-${process.pid}-ü`), exact: true, shown: `@plain-${process.pid}-ü` },
    { bytes: Buffer.from(long), exact: true, shown: long },
  ];
  assert.equal(cases[3]!.bytes.length, 108);
  for (const c of cases) {
    const sender = python(t, ODD_SENDER, [c.bytes.toString('hex'), name]);
    const message = await receiver.receive();
    assert.ok(message?.from, 'a bound sender has a name');
    assert.deepEqual(message.from.bytes, c.bytes, 'the exact address');
    assert.equal(message.from.exact, c.exact);
    assert.equal(String(message.from), c.shown);
    await receiver.send('reply', { to: message.from });
    assert.equal((await sender.output).trim(), 'reply', 'the reply reached that very sender');
  }
  await receiver.close();
  fs.rmSync(long, { force: true });
});

test('a listener with no error listener survives EMFILE and serves again once descriptors are free', { timeout: 30_000 }, () => {
  const fixture = fileURLToPath(new URL('../fixtures/unix-emfile-unhandled.js', import.meta.url));
  const out = execFileSync('sh', ['-c', 'ulimit -n 256 && exec "$0" "$1" 2>&1', process.execPath, fixture], { encoding: 'utf8', timeout: 20_000 });
  const report = JSON.parse(out.trim().split('\n').pop()!) as { accepted: string[]; warnings: string[] };
  assert.deepEqual(report.accepted, ['seqpacket', 'stream', 'seqpacket', 'stream'], 'every listener accepted, twice');
  assert.ok(report.warnings.length >= 1 && report.warnings.every((code) => code === 'EMFILE'), `told as warnings (${report.warnings.join()})`);
});

test('closing a socket in a message listener stops the batch and closes its descriptors at once', { timeout: 30_000 }, async () => {
  const baseline = openFds();
  let delivered = 0;
  for (let round = 0; round < 30; round++) {
    const [a, b] = unixSocketPair({ type: 'seqpacket' });
    const held = fs.openSync('/dev/null', 'r');
    // 20 messages of 10 descriptors each, all in the kernel before b reads one batch.
    await Promise.all(Array.from({ length: 20 }, () => a.send('x', { fds: Array(10).fill(held) })));
    fs.closeSync(held);
    await new Promise<void>((resolve) => {
      b.on('message', (m: UnixMessage) => {
        delivered++;
        for (const d of m.fds) d.close();
        void b.close().then(() => resolve());
      });
    });
    await a.close();
  }
  assert.equal(delivered, 30, 'one message a round: none after close');
  assert.equal(openFds(), baseline, 'no descriptor left for the collector');
});

test('a datagram socket whose connected peer disconnects gets ECONNRESET in turn, and goes on', async () => {
  const names = ['a', 'b', 'c'].map((x) => nsName(uniqueName(`dgram-reset-${x}`)));
  const [a, b, c] = await Promise.all(names.map((n) => bindDatagram(n)));
  a!.connect(names[1]!);
  b!.connect(names[0]!);
  await b!.send('to a, never read');
  const pending = b!.receive();
  await sleep(20);
  a!.connect(names[2]!); // a leaves b with b's datagram unread: the kernel resets b
  await assert.rejects(Promise.race([pending, sleep(5000).then(() => assert.fail('receive() never settled'))]), { code: 'ECONNRESET' });
  b!.connect(names[2]!);
  c!.connect(names[1]!);
  const next = b!.receive();
  await c!.send('still working');
  assert.equal(String((await next)!.data), 'still working');
  await Promise.all([a!.close(), b!.close(), c!.close()]);
});
