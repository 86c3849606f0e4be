// Sending credentials (SCM_CREDENTIALS) with send({ credentials }): checked by a receiver no one
// here wrote (Python's recvmsg with SO_PASSCRED) on datagram, seqpacket and stream sockets, with
// descriptors in the same message; the kernel's check of credentials that are not the sender's
// own, across a real process run as nobody (a typed EPERM for that message only); bad values and
// other platforms as typed errors; no descriptor left open.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { type InterprocessError, type UnixMessage, type UnixSocket, bindDatagram, connectUnix, listenUnix, nsName, unixSocketPair } from 'interprocess';
import { sendCredentials } from '#internal/unix-socket/checks.js';
import { openFds, python, scratchDir, settledFds, spawnFixture, uniqueName } from '../helpers.js';

const NOBODY = 65534;
const linux = process.platform !== 'linux' && 'SCM_CREDENTIALS is Linux only';
const asRoot = process.getuid?.() === 0;

// Receives argv[3] messages on an abstract name (argv[1]) of type argv[2] with SO_PASSCRED, and
// prints, for each, its bytes, the SCM_CREDENTIALS it came with and the contents of its files.
const RECEIVER = `
import array, json, os, socket, struct, sys
kind = {'datagram': socket.SOCK_DGRAM, 'seqpacket': socket.SOCK_SEQPACKET, 'stream': socket.SOCK_STREAM}[sys.argv[2]]
s = socket.socket(socket.AF_UNIX, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind('\\0' + sys.argv[1])
if kind != socket.SOCK_DGRAM:
    s.listen(1)
    print('listening', flush=True)
    s, _ = s.accept()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print('ready', flush=True)
out = []
for _ in range(int(sys.argv[3])):
    data, ancillary, flags, addr = s.recvmsg(1024, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(16))
    cred, files = None, []
    for level, kind_, payload in ancillary:
        if level == socket.SOL_SOCKET and kind_ == socket.SCM_CREDENTIALS:
            cred = list(struct.unpack('iII', payload[:12]))
        elif level == socket.SOL_SOCKET and kind_ == socket.SCM_RIGHTS:
            for fd in array.array('i', payload[:len(payload) - len(payload) % 4]):
                files.append(os.pread(fd, 100, 0).decode())
                os.close(fd)
    out.append({'data': data.decode(), 'cred': cred, 'files': files})
print(json.dumps(out), flush=True)
`;

/** Resolves with the child's stdout lines as they come, one per call. */
function lines(stream: NodeJS.ReadableStream): () => Promise<string> {
  const queue: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let partial = '';
  stream.on('data', (d: Buffer) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      const w = waiting.shift();
      if (w) w(line);
      else queue.push(line);
    }
  });
  return () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiting.push(resolve)));
}

for (const type of ['datagram', 'seqpacket', 'stream'] as const) {
  test(`${type}: a Python receiver with SO_PASSCRED sees the credentials we send, with descriptors in the same message`, { skip: linux, timeout: 30_000 }, async (t) => {
    const before = openFds();
    const name = uniqueName(`creds-${type}`);
    const file = path.join(scratchDir(t), 'sent.txt');
    fs.writeFileSync(file, 'a file with credentials');
    const py = python(t, RECEIVER, [name, type, '3']);
    const next = lines(py.stdout!);
    let socket: UnixSocket;
    if (type === 'datagram') {
      assert.equal(await next(), 'ready');
      socket = await bindDatagram(null, { autobind: true });
      await socket.connect(nsName(name));
    } else {
      assert.equal(await next(), 'listening');
      socket = await connectUnix(nsName(name), { type });
      assert.equal(await next(), 'ready'); // SO_PASSCRED is on before anything is sent
    }
    const handle = await fsp.open(file, 'r');
    await socket.send('own', { credentials: true, fds: [handle] });
    await handle.close();
    // Root may name another process, user and group: the receiver's pid, and nobody.
    const other = asRoot ? { pid: py.pid!, uid: NOBODY, gid: NOBODY } : { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };
    await socket.send('named', { credentials: other });
    await socket.send('none');
    const report = JSON.parse(await next()) as Array<{ data: string; cred: number[]; files: string[] }>;
    assert.deepEqual(report, [
      { data: 'own', cred: [process.pid, process.geteuid!(), process.getegid!()], files: ['a file with credentials'] },
      { data: 'named', cred: [other.pid, other.uid, other.gid], files: [] },
      { data: 'none', cred: [process.pid, process.getuid!(), process.getgid!()], files: [] },
    ]);
    await socket.close();
    await py.output;
    assert.equal(openFds(), before, 'no descriptor left open');
  });
}

test('our own receiver (passCredentials) gets what we send on every type, and a stream keeps messages with different credentials apart', { skip: linux, timeout: 30_000 }, async () => {
  for (const type of ['datagram', 'seqpacket', 'stream'] as const) {
    const [a, b] = unixSocketPair({ type, passCredentials: true });
    const named = asRoot ? { pid: 1, uid: 7, gid: 8 } : { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };
    await Promise.all([a.send('first', { credentials: named }), a.send('second', { credentials: true })]);
    const got: UnixMessage[] = [await b.receive() as UnixMessage, await b.receive() as UnixMessage];
    assert.deepEqual(got.map((m) => [String(m.data), m.credentials]), [
      ['first', named],
      ['second', { pid: process.pid, uid: process.geteuid!(), gid: process.getegid!() }],
    ], type);
    await a.close();
    await b.close();
  }
});

test('as nobody, credentials not its own are refused by the kernel: a typed EPERM for that message only, the next one goes', { skip: linux || (!asRoot && 'needs root to run the sender as nobody'), timeout: 60_000 }, async (t) => {
  for (const type of ['datagram', 'seqpacket', 'stream'] as const) {
    const name = uniqueName(`creds-nobody-${type}`);
    const received: UnixMessage[] = [];
    let receiver: { close(): Promise<void> };
    if (type === 'datagram') {
      const socket = await bindDatagram(nsName(name), { passCredentials: true, allow: 'any' });
      socket.on('message', (m) => received.push(m));
      receiver = socket;
    } else {
      const listener = await listenUnix(nsName(name), { type, allow: 'any', passCredentials: true });
      listener.on('connection', (conn) => {
        conn.on('message', (m) => received.push(m));
        conn.on('error', () => {});
        t.after(() => conn.destroy());
      });
      receiver = listener;
    }
    t.after(() => receiver.close());
    const child = spawnFixture(t, 'send-credentials', [type, name], process.env, { uid: NOBODY, gid: NOBODY });
    const result = await child.next<{ uid: number; pid: number; outcomes: unknown[] }>('result');
    assert.equal(result.uid, NOBODY);
    assert.deepEqual(result.outcomes, [{ code: 'EPERM', typed: true, hint: true }, { code: 'EPERM', typed: true, hint: true }, 'sent'], type);
    const deadline = Date.now() + 10_000;
    while (received.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(received.map((m) => [String(m.data), m.credentials]), [['attempt 2', { pid: result.pid, uid: NOBODY, gid: NOBODY }]], `${type}: only its own credentials arrived`);
    await receiver.close();
  }
});

test('a stream receiver with passCredentials sees the end once when the sender closes (the last read carries a cmsg too)', { skip: linux, timeout: 30_000 }, async () => {
  const [a, b] = unixSocketPair({ type: 'stream', passCredentials: true });
  await a.send('last words', { credentials: true });
  await a.close();
  const got: string[] = [];
  let ended = false;
  b.on('end', () => (ended = true));
  for await (const message of b.iterator({ closeOnReturn: true })) {
    got.push(String(message.data));
    if (got.length > 5) break; // before the fix: empty messages without end
  }
  assert.deepEqual(got, ['last words']);
  assert.equal(ended, true);
});

test('root naming a pid no process has: ESRCH, typed, and the socket goes on', { skip: linux || (!asRoot && 'needs root'), timeout: 30_000 }, async () => {
  const [a, b] = unixSocketPair({ type: 'seqpacket', passCredentials: true });
  await assert.rejects(a.send('x', { credentials: { pid: 0x7ffffffe, uid: 0, gid: 0 } }), (e: InterprocessError) => e.code === 'ESRCH' && /No process has the pid/.test(e.message));
  await a.send('y', { credentials: true });
  assert.equal(String((await b.receive())!.data), 'y');
  await a.close();
  await b.close();
});

test('bad credentials are typed errors before anything is sent; a stream needs a byte to carry them', { skip: linux, timeout: 30_000 }, async () => {
  const before = await settledFds(); // the earlier tests' sockets may still be closing
  const [a, b] = unixSocketPair({ type: 'stream', passCredentials: true });
  for (const credentials of [null, 'yes', 1, () => 1]) {
    await assert.rejects(a.send('x', { credentials: credentials as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  for (const credentials of [{}, { pid: 0, uid: 0, gid: 0 }, { pid: 1.5, uid: 0, gid: 0 }, { pid: 1, uid: -1, gid: 0 }, { pid: 1, uid: 0, gid: 2 ** 32 }, { pid: 2 ** 31, uid: 0, gid: 0 }]) {
    await assert.rejects(a.send('x', { credentials: credentials as never }), { code: 'ERR_INVALID_ARG_VALUE' }, JSON.stringify(credentials));
  }
  await assert.rejects(a.send('', { credentials: true }), { code: 'ERR_INVALID_ARG_VALUE', message: /at least one byte/ });
  await a.send('fine', { credentials: false });
  assert.equal(String((await b.receive())!.data), 'fine');
  await a.close();
  await b.close();
  assert.equal(openFds(), before);
});

test('elsewhere than Linux, sending credentials is ERR_INTERPROCESS_UNSUPPORTED with what to use instead', () => {
  const platform = Object.getOwnPropertyDescriptor(process, 'platform')!;
  Object.defineProperty(process, 'platform', { ...platform, value: 'darwin' });
  try {
    assert.throws(() => sendCredentials(true), (e: InterprocessError) => e.code === 'ERR_INTERPROCESS_UNSUPPORTED' && /peerCredentials\(\)/.test(e.message));
    assert.throws(() => sendCredentials({ pid: 1, uid: 0, gid: 0 }), { code: 'ERR_INTERPROCESS_UNSUPPORTED' });
    assert.equal(sendCredentials(false), null, 'false asks for nothing, anywhere');
  } finally {
    Object.defineProperty(process, 'platform', platform);
  }
});
