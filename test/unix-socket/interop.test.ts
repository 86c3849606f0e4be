// Peers that no one here wrote: Python's socket module (SOCK_SEQPACKET, send_fds/recv_fds,
// SO_PEERCRED) and socat (datagrams), each in both directions.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { bindDatagram, connectUnix, fsName, listenUnix, nsName } from 'interprocess';
import { readAll, scratchDir, uniqueName, python } from '../helpers.js';


const PYTHON_SERVER = `
import json, os, socket, struct, sys
srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind('\\0' + sys.argv[1]); srv.listen(1)
print('ready', flush=True)
conn, _ = srv.accept()
pid, uid, gid = struct.unpack('3i', conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
first = conn.recv(1024)
msg, fds, flags, addr = socket.recv_fds(conn, 1024, 4)
content = os.pread(fds[0], 100, 0).decode()
r, w = os.pipe(); os.write(w, b'through a pipe from python'); os.close(w)
socket.send_fds(conn, [json.dumps({'first': first.decode(), 'got': msg.decode(), 'content': content, 'peer_pid': pid}).encode()], [r])
os.close(r)
conn.recv(10)
`;

test('Python serves SOCK_SEQPACKET on an abstract name: we connect, pass a file, get a pipe back; both see each other through SO_PEERCRED', { timeout: 30_000 }, async (t) => {
  const name = uniqueName('py');
  const py = python(t, PYTHON_SERVER, [name]);
  await once(py.stdout!, 'data');
  const file = path.join(scratchDir(t), 'for-python.txt');
  fs.writeFileSync(file, 'read by python');
  const handle = await fsp.open(file, 'r');
  t.after(() => handle.close());
  const socket = await connectUnix(nsName(name), { type: 'seqpacket', wait: true, timeout: 10_000 });
  t.after(() => socket.close());
  assert.equal(socket.peerCredentials().pid, py.pid, 'SO_PEERCRED names the Python process');
  await socket.send('boundary one');
  await socket.send('hello python', { fds: [handle] });
  const reply = (await socket.receive())!;
  const report = JSON.parse(String(reply.data)) as { first: string; got: string; content: string; peer_pid: number };
  assert.deepEqual(report, { first: 'boundary one', got: 'hello python', content: 'read by python', peer_pid: process.pid });
  assert.equal(reply.fds.length, 1);
  assert.equal(reply.fds[0]!.kind, 'fifo');
  const pipe = reply.fds[0]!.toNetSocket({ writable: false });
  assert.equal(String(await readAll(pipe)), 'through a pipe from python');
  await socket.close();
  await py.output;
});

const PYTHON_CLIENT = `
import json, os, socket, struct, sys
c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
c.connect(sys.argv[1])
pid, uid, gid = struct.unpack('3i', c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
f = open(sys.argv[2], 'rb')
socket.send_fds(c, [b'from python'], [f.fileno()])
c.send(b'')
msg, fds, flags, addr = socket.recv_fds(c, 1024, 4)
print(json.dumps({'peer_pid': pid, 'reply': msg.decode(), 'content': os.pread(fds[0], 100, 0).decode()}))
`;

test('a Python SOCK_SEQPACKET client connects to our listener: descriptors both ways, credentials both ways', { timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  const socketPath = path.join(dir, 'py.sock');
  fs.writeFileSync(path.join(dir, 'from-python.txt'), 'python sent this file');
  fs.writeFileSync(path.join(dir, 'from-us.txt'), 'we sent this file');
  await using listener = await listenUnix(fsName(socketPath), { type: 'seqpacket' });
  const py = python(t, PYTHON_CLIENT, [socketPath, path.join(dir, 'from-python.txt')]);
  const conn = (await listener[Symbol.asyncIterator]().next()).value!;
  t.after(() => conn.close());
  assert.equal(conn.peerCredentials().pid, py.pid);
  const message = (await conn.receive())!;
  assert.equal(String(message.data), 'from python');
  const handle = await message.fds[0]!.toFileHandle();
  assert.equal(await handle.readFile('utf8'), 'python sent this file');
  await handle.close();
  const empty = (await conn.receive())!;
  assert.equal(empty.data.length, 0, 'an empty seqpacket message is a message, not the end');
  const ours = await fsp.open(path.join(dir, 'from-us.txt'), 'r');
  await conn.send('reply from node', { fds: [ours] });
  await ours.close();
  const report = JSON.parse(await py.output) as { peer_pid: number; reply: string; content: string };
  assert.deepEqual(report, { peer_pid: process.pid, reply: 'reply from node', content: 'we sent this file' });
});

function socat(t: import('node:test').TestContext, args: string[], input?: string): ChildProcess & { stdoutText: () => string } {
  const child = spawn('socat', args, { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => child.kill());
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  if (input !== undefined) child.stdin!.end(input);
  return Object.assign(child, { stdoutText: () => out });
}

for (const kind of ['filesystem', 'abstract'] as const) {
  test(`socat sends datagrams to us (${kind} name): each arrives whole, with socat's credentials`, { timeout: 30_000 }, async (t) => {
    const raw = kind === 'filesystem' ? path.join(scratchDir(t), 'dgram.sock') : uniqueName('socat');
    await using socket = await bindDatagram(kind === 'filesystem' ? fsName(raw) : nsName(raw), { passCredentials: true });
    const address = kind === 'filesystem' ? `UNIX-SENDTO:${raw}` : `ABSTRACT-SENDTO:${raw}`;
    const child = socat(t, ['-u', '-', address], 'one datagram from socat\n');
    const message = (await socket.receive())!;
    assert.equal(String(message.data), 'one datagram from socat\n');
    assert.equal(message.credentials?.pid, child.pid, 'SCM_CREDENTIALS names the socat process');
    assert.equal(message.credentials?.uid, process.getuid!());
  });

  test(`we send datagrams to socat (${kind} name)`, { timeout: 30_000 }, async (t) => {
    const raw = kind === 'filesystem' ? path.join(scratchDir(t), 'socat-recv.sock') : uniqueName('socat');
    const address = kind === 'filesystem' ? `UNIX-RECV:${raw}` : `ABSTRACT-RECV:${raw}`;
    const child = socat(t, ['-u', address, '-']);
    await using socket = await bindDatagram();
    const to = kind === 'filesystem' ? fsName(raw) : nsName(raw);
    // socat binds when it is ready: until then there is nothing there (ENOENT, ECONNREFUSED).
    for (let attempt = 0; ; attempt++) {
      try {
        await socket.send('first\n', { to });
        break;
      } catch (error) {
        if (attempt > 500 || !['ENOENT', 'ECONNREFUSED'].includes((error as { code?: string }).code!)) throw error;
        await sleep(10);
      }
    }
    await socket.send('second\n', { to });
    while (!child.stdoutText().includes('second\n')) await sleep(10);
    assert.equal(child.stdoutText(), 'first\nsecond\n');
  });
}

const PYTHON_BIG = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
for seed in (1, 2):
    s.sendto(bytes([seed]) * 1_000_000, '\\0' + sys.argv[1])
`;

test('a datagram larger than a default sender can send (1 MB, from Python with a raised SO_SNDBUF) is never cut silently', { timeout: 30_000 }, async (t) => {
  const name = uniqueName('big');
  await using socket = await bindDatagram(nsName(name));
  await python(t, PYTHON_BIG, [name]).output; // both are queued before we read
  const first = (await socket.receive())!;
  assert.equal(first.data.length, 1_000_000, 'the first in line arrives whole');
  assert.ok(first.data.every((b) => b === 1));
  // Behind another in one batch, the second is either whole or reported as truncated: never short.
  const second = await socket.receive().then(
    (m) => m!.data,
    (e: Error & { code: string }) => e,
  );
  if (second instanceof Error) {
    assert.equal(second.code, 'EMSGSIZE');
    assert.match(second.message, /1000000-byte message arrived truncated/);
  } else {
    assert.equal(second.length, 1_000_000);
  }
});

const PYTHON_EMPTY_THEN_CLOSE = `
import socket, sys
c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
c.connect(sys.argv[1])
for m in [b'first', b'', b'', b'last', b'']:
    c.send(m)
c.close()
`;

test('empty seqpacket messages sent just before the peer closes are messages, then the end', { timeout: 30_000 }, async (t) => {
  const socketPath = path.join(scratchDir(t), 'empty.sock');
  for (const passCredentials of [false, true]) {
    await using listener = await listenUnix(fsName(socketPath), { type: 'seqpacket', passCredentials });
    const py = python(t, PYTHON_EMPTY_THEN_CLOSE, [socketPath]);
    const conn = (await listener[Symbol.asyncIterator]().next()).value!;
    t.after(() => conn.close());
    await py.output; // the peer has sent everything and closed before we read anything
    const got: string[] = [];
    for await (const message of conn) {
      got.push(String(message.data));
      assert.equal(message.credentials === null, !passCredentials, 'credentials only when asked for');
    }
    assert.deepEqual(got, ['first', '', '', 'last', ''], `passCredentials: ${passCredentials}`);
    assert.equal(await conn.receive(), null);
    await conn.close();
  }
});

const PYTHON_SERVER_EMPTY_THEN_CLOSE = `
import socket, sys
srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind(sys.argv[1]); srv.listen(1)
print('ready', flush=True)
conn, _ = srv.accept()
for m in [b'', b'middle', b'', b'']:
    conn.send(m)
conn.close()
`;

test('the same on a connecting socket (no address: SO_PASSCRED only while it reads)', { timeout: 30_000 }, async (t) => {
  const socketPath = path.join(scratchDir(t), 'empty-server.sock');
  const py = python(t, PYTHON_SERVER_EMPTY_THEN_CLOSE, [socketPath]);
  await once(py.stdout!, 'data');
  const conn = await connectUnix(fsName(socketPath), { type: 'seqpacket' });
  t.after(() => conn.close());
  await py.output;
  const got: string[] = [];
  for await (const message of conn) got.push(String(message.data));
  assert.deepEqual(got, ['', 'middle', '', '']);
  assert.equal(conn.localName, null, 'reading left the socket unbound');
});
