// The peer's supplementary groups (SO_PEERGROUPS), asked for with peerCredentials({ groups: true })
// and read by `allow: { gids }` rules. The peers are Python processes started under
// `setpriv --reuid=65534 --regid=65534 --groups=...` (or one that calls setgroups itself), and what
// we see is compared with the kernel's own account, the Groups: line of /proc/PID/status.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { test } from 'node:test';
import { type InterprocessError, type LocalSocket, type PeerCredentials, type UnixSocket, listen, listenUnix, nsName, unixSocketPair } from 'interprocess';
import { openFds, uniqueName } from '../helpers.js';

const NOBODY = 65534;
const asRoot = process.platform === 'linux' && process.getuid?.() === 0;
// A python3 that nobody may run (pyenv's shims live under root's home).
const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => fs.existsSync(p));
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
const needs =
  (!asRoot && 'these tests run peers as nobody with chosen groups, which needs root on Linux') ||
  (PYTHON === undefined && 'no python3 outside root\'s home for the peer run as nobody') ||
  (setpriv === undefined && 'setpriv (util-linux) is missing');

// Connects to an abstract name (argv[1]) with the socket type argv[2], prints 'connected', and
// holds the connection until its stdin closes.
const PEER = `
import socket, sys
kind = socket.SOCK_SEQPACKET if sys.argv[2] == 'seqpacket' else socket.SOCK_STREAM
s = socket.socket(socket.AF_UNIX, kind)
try:
    s.connect('\\0' + sys.argv[1])
    print('connected', flush=True)
except OSError as e:
    print('failed', e.errno, flush=True)
sys.stdin.read()
`;

/** A peer as nobody with `groups` (setpriv), connecting to `name`. */
function peerWithGroups(t: import('node:test').TestContext, name: string, groups: number[], type: 'stream' | 'seqpacket' = 'stream'): ChildProcess {
  const args = ['--reuid=65534', '--regid=65534', groups.length > 0 ? `--groups=${groups.join(',')}` : '--clear-groups', PYTHON!, '-c', PEER, name, type];
  return reaped(t, spawn(setpriv!, args, { stdio: ['pipe', 'pipe', 'inherit'] }));
}

/** Kills the child after the test and waits until its pipes are closed (the next test counts descriptors). */
function reaped(t: import('node:test').TestContext, child: ChildProcess): ChildProcess {
  const closed = once(child, 'close');
  t.after(async () => {
    child.kill('SIGKILL');
    await closed;
  });
  return child;
}

/** What the peer printed first ('connected' or 'failed ERRNO'). */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`the peer exited (${code}) before it said anything`)));
  });
}

/** The kernel's own account of a process's supplementary groups. */
function procGroups(pid: number): number[] {
  const line = /^Groups:(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!.trim();
  return line === '' ? [] : line.split(/\s+/).map(Number);
}

const GROUPS = [4, 27, 100, 3001, 70000];

test('a local-socket peer run with supplementary groups: peerCredentials({ groups: true }) gives exactly its Groups:, kept after close', { skip: needs, timeout: 30_000 }, async (t) => {
  const before = openFds();
  const name = uniqueName('groups');
  const listener = await listen(nsName(name), { allow: 'any' });
  t.after(() => listener.close());
  const accepted = new Promise<LocalSocket>((resolve) => listener.once('connection', resolve));
  const child = peerWithGroups(t, name, GROUPS);
  assert.equal(await firstLine(child), 'connected');
  const conn = await accepted;
  const plain = conn.peerCredentials();
  assert.equal('groups' in plain, false, 'without the option the shape is { pid, uid, gid } as before');
  const credentials = conn.peerCredentials({ groups: true });
  assert.deepEqual(credentials, { pid: child.pid, uid: NOBODY, gid: NOBODY, groups: procGroups(child.pid!) });
  assert.deepEqual(credentials.groups, GROUPS);
  assert.ok(Object.isFrozen(credentials) && Object.isFrozen(credentials.groups));
  assert.equal(conn.peerCredentials({ groups: true }), credentials, 'read once, then kept');
  assert.equal(conn.peerCredentials(), credentials, 'and given without the option too');
  conn.destroy();
  await new Promise((resolve) => conn.once('close', resolve));
  assert.deepEqual(conn.peerCredentials({ groups: true }).groups, GROUPS, 'answers after close');
  child.stdin!.end();
  await once(child, 'close'); // its pipes closed
  await listener.close();
  assert.equal(openFds(), before, 'no descriptor leaks');
});

test('groups not asked for before close cannot be read after: a typed error that says when to ask; bad options are typed too', { skip: needs, timeout: 30_000 }, async (t) => {
  const name = uniqueName('groups');
  await using listener = await listen(nsName(name), { allow: 'any' });
  const accepted = new Promise<LocalSocket>((resolve) => listener.once('connection', resolve));
  const child = peerWithGroups(t, name, [10]);
  assert.equal(await firstLine(child), 'connected');
  const conn = await accepted;
  assert.throws(() => conn.peerCredentials({ groups: 'yes' } as never), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => conn.peerCredentials(7 as never), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(conn.peerCredentials({ groups: false }).uid, NOBODY);
  conn.destroy();
  await new Promise((resolve) => conn.once('close', resolve));
  assert.equal(conn.peerCredentials().uid, NOBODY, 'the credentials themselves still answer');
  assert.throws(() => conn.peerCredentials({ groups: true }), (e: InterprocessError) => e.code === 'ERR_SOCKET_CLOSED' && /while it is connected/.test(e.message));
  child.stdin!.end();
});

test('UnixSocket stream and seqpacket: the accepted peer\'s groups, a pair\'s own groups, and ERR_INTERPROCESS_CLOSED once closed unasked', { skip: needs, timeout: 30_000 }, async (t) => {
  for (const type of ['stream', 'seqpacket'] as const) {
    const name = uniqueName('ugroups');
    await using listener = await listenUnix(nsName(name), { type, allow: 'any' });
    const accepted = new Promise<UnixSocket>((resolve) => listener.once('connection', resolve));
    const child = peerWithGroups(t, name, GROUPS, type);
    assert.equal(await firstLine(child), 'connected');
    const conn = await accepted;
    assert.deepEqual(conn.peerCredentials({ groups: true }), { pid: child.pid, uid: NOBODY, gid: NOBODY, groups: procGroups(child.pid!) });
    await conn.close();
    assert.deepEqual(conn.peerCredentials({ groups: true }).groups, GROUPS, `${type}: kept after close`);
    child.stdin!.end();
  }
  // A pair: our own groups, as the kernel has them.
  const [a, b] = unixSocketPair({ type: 'seqpacket' });
  assert.deepEqual(a.peerCredentials({ groups: true }).groups, procGroups(process.pid));
  await b.close();
  await a.close();
  assert.throws(() => b.peerCredentials({ groups: true }), { code: 'ERR_INTERPROCESS_CLOSED' });
});

test('allow: { gids } lets in a peer whose supplementary group is listed (its primary one is not), and refuses one without it', { skip: needs, timeout: 60_000 }, async (t) => {
  const GROUP = 4242;
  for (const kind of ['local', 'stream', 'seqpacket'] as const) {
    const name = uniqueName('gids');
    const listener = kind === 'local' ? await listen(nsName(name), { allow: { gids: [GROUP] } }) : await listenUnix(nsName(name), { type: kind, allow: { gids: [GROUP] } });
    t.after(() => listener.close());
    const refused: Array<PeerCredentials | null> = [];
    listener.on('refused', (credentials: PeerCredentials | null) => refused.push(credentials));
    const connections: Array<LocalSocket | UnixSocket> = [];
    listener.on('connection', (conn: LocalSocket | UnixSocket) => connections.push(conn));
    t.after(() => connections.forEach((conn) => conn.destroy()));
    const type = kind === 'seqpacket' ? 'seqpacket' : 'stream';
    const member = peerWithGroups(t, name, [7, GROUP], type);
    assert.equal(await firstLine(member), 'connected');
    const outsider = peerWithGroups(t, name, [7, 4243], type);
    assert.equal(await firstLine(outsider), 'connected'); // connect(2) succeeds: the rule closes it after accept
    const deadline = Date.now() + 20_000;
    while (connections.length + refused.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(connections.length, 1, `${kind}: the member is let in`);
    assert.deepEqual(connections[0]!.peerCredentials().groups, [7, GROUP], `${kind}: the rule read the groups, and the connection keeps them`);
    assert.equal(connections[0]!.peerCredentials().pid, member.pid);
    assert.equal(listener.refused, 1, `${kind}: the outsider is refused`);
    assert.deepEqual(refused[0], { pid: outsider.pid, uid: NOBODY, gid: NOBODY, groups: [7, 4243] });
    for (const conn of connections) conn.destroy();
    member.stdin!.end();
    outsider.stdin!.end();
    await listener.close();
  }
});

test('a peer with 65536 supplementary groups (NGROUPS_MAX): the growing buffer reads them all', { skip: needs, timeout: 60_000 }, async (t) => {
  const before = openFds();
  const name = uniqueName('many-groups');
  const listener = await listen(nsName(name), { allow: 'any' });
  t.after(() => listener.close());
  const accepted = new Promise<LocalSocket>((resolve) => listener.once('connection', resolve));
  const program = `
import os, socket, sys
os.setgroups(list(range(1, 65537)))
os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect('\\0' + sys.argv[1])
print('connected', flush=True)
sys.stdin.read()
`;
  const child = reaped(t, spawn(PYTHON!, ['-c', program, name], { stdio: ['pipe', 'pipe', 'inherit'] }));
  assert.equal(await firstLine(child), 'connected');
  const conn = await accepted;
  const { groups } = conn.peerCredentials({ groups: true });
  assert.equal(groups!.length, 65536);
  assert.deepEqual(groups, procGroups(child.pid!));
  conn.destroy();
  child.stdin!.end();
  await once(child, 'close');
  await listener.close();
  assert.equal(openFds(), before);
});
