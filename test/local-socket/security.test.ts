// Socket file modes (never reachable wider than asked), Windows security descriptors, and peer
// credentials across processes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LocalSocket, connect, listen, nsName } from 'interprocess';
import { scratchDir, spawnFixture, testSocketPath, uniqueName, wine } from '../helpers.js';

const windows = process.platform === 'win32';
const noFileMode = windows && 'Windows local sockets are named pipes, which have no file mode: who may connect is set with securityDescriptor (SDDL, tested below)';
const windowsOnly = !windows && 'securityDescriptor is SDDL for Windows named pipes; Unix sockets use mode (tested above)';

test('mode: 0o600 is the socket file mode, checked with stat', { skip: noFileMode }, async (t) => {
  const dir = scratchDir(t);
  for (const mode of [0o600, 0o660, 0o666]) {
    const socketPath = path.join(dir, `mode-${mode.toString(8)}.sock`);
    await using listener = await listen(socketPath, { mode });
    assert.equal(fs.statSync(socketPath).mode & 0o777, mode);
    assert.ok(listener.listening);
  }
});

test('mode: the socket file is never visible with wider permissions than asked', { skip: noFileMode, timeout: 30_000 }, async (t) => {
  const socketPath = path.join(scratchDir(t), 'watched.sock');
  const watcher = spawnFixture(t, 'mode-watch', [socketPath]);
  await watcher.next('ready');
  for (let i = 0; i < 20; i++) {
    const listener = await listen(socketPath, { mode: 0o600 });
    await sleep(5); // long enough for the watcher to see it
    await listener.close();
  }
  watcher.send({ type: 'stop' });
  const { modes, polls } = await watcher.next<{ modes: number[]; polls: number }>('seen');
  assert.ok(polls > 1000, `the watcher polled (${polls} times)`);
  assert.ok(modes.length > 0, 'the watcher saw the socket file');
  assert.deepEqual(modes, [0o600], `modes seen: ${modes.map((m) => m.toString(8))}`);
});

test('mode is refused where there is no file to hold it', async () => {
  await assert.rejects(listen(nsName(uniqueName()), { mode: 0o600 }), { code: 'ERR_INVALID_ARG_VALUE', message: /no file permissions/ });
  await assert.rejects(listen(nsName(uniqueName()), { mode: 0o1777 }), { code: 'ERR_INVALID_ARG_VALUE' });
});

test('off Windows, securityDescriptor fails with ERR_INTERPROCESS_UNSUPPORTED', { skip: windows && 'this is Windows' }, async () => {
  await assert.rejects(listen(nsName(uniqueName()), { securityDescriptor: 'D:(A;;GA;;;OW)' }), { code: 'ERR_INTERPROCESS_UNSUPPORTED', message: /mode/ });
});

test('securityDescriptor: bad SDDL fails with EINVAL; an owner-only pipe lets its owner in', { skip: windowsOnly }, async () => {
  await assert.rejects(listen(nsName(uniqueName()), { securityDescriptor: 'not SDDL' }), { code: 'EINVAL' });
  const name = nsName(uniqueName());
  await using listener = await listen(name, { securityDescriptor: 'D:P(A;;GA;;;OW)' });
  const accepted = once(listener, 'connection');
  const client = await connect(name);
  const [server] = (await accepted) as [LocalSocket];
  assert.equal(server.peerCredentials().pid, process.pid);
  client.destroy();
  server.destroy();
});

test('securityDescriptor: a pipe that denies everyone refuses clients with EACCES', { skip: windowsOnly || (wine && 'Wine does not enforce pipe security descriptors') }, async () => {
  const name = nsName(uniqueName());
  await using listener = await listen(name, { securityDescriptor: 'D:(D;;GA;;;WD)' });
  assert.ok(listener.listening);
  await assert.rejects(connect(name), (e: { code: string; message: string }) => {
    assert.equal(e.code, 'EACCES');
    assert.match(e.message, /security descriptor/);
    return true;
  });
});

test('peer credentials equal the other process\'s pid, uid and gid, on both sides', async (t) => {
  // uid and gid are null on Windows, which has neither.
  const me = { pid: process.pid, uid: process.getuid?.() ?? null, gid: process.getgid?.() ?? null };
  // This process serves; a child connects.
  const socketPath = testSocketPath(t, 'creds.sock');
  await using listener = await listen(socketPath);
  const accepted = once(listener, 'connection');
  const name = uniqueName();
  const child = spawnFixture(t, 'echo-server', ['ns', name]);
  const info = await child.next<{ pid: number; uid: number | null; gid: number | null }>('listening');

  // This process connects to the child's server: its peer is the child.
  const conn = await connect(nsName(name));
  assert.deepEqual(conn.peerCredentials(), { pid: info.pid, uid: info.uid, gid: info.gid });
  // And the child sees this process.
  const { peer } = await child.next<{ peer: unknown }>('peer');
  assert.deepEqual(peer, me);
  conn.destroy();

  // Same on a filesystem name, server side, with a connection from another process (socat-free:
  // the child's own connect through a second echo-server is overkill, so use a one-line node client).
  const { spawn } = await import('node:child_process');
  const client = spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(socketPath)}).on('connect', function () { setTimeout(() => this.end(), 200) })`], { stdio: 'ignore' });
  t.after(() => client.kill());
  const [serverSide] = (await accepted) as [LocalSocket];
  const creds = serverSide.peerCredentials();
  assert.deepEqual(creds, { ...me, pid: client.pid });
  serverSide.destroy();
  // Remembered after close.
  assert.deepEqual(serverSide.peerCredentials(), creds);
});

test('peer credentials of a never-connected socket fail clearly', async () => {
  const { LocalSocket } = await import('interprocess');
  const socket = new LocalSocket();
  assert.throws(() => socket.peerCredentials(), { code: 'ERR_SOCKET_CLOSED' });
});

test('Windows: a pipe without securityDescriptor gets the DACL of its allow rule', { skip: windowsOnly }, async () => {
  const { defaultSecurityDescriptor, listenNamedPipe } = await import('interprocess');
  // Windows may write the rights of an entry in another order (Wine: GWGR for GRGW): compare entries.
  const entries = (sddl: string) => sddl.replace(/GWGR/g, 'GRGW').match(/\([^)]*\)/g)?.sort();
  await using same = await listenNamedPipe(uniqueName());
  assert.deepEqual(entries(same.securityDescriptor()), entries(defaultSecurityDescriptor('same-user')));
  assert.doesNotMatch(same.securityDescriptor(), /;;;(AU|WD)\)/, 'no entry for other users');
  await using local = await listen(nsName(uniqueName()));
  assert.ok(local.listening);
  await using any = await listenNamedPipe(uniqueName(), { allow: 'any' });
  assert.deepEqual(entries(any.securityDescriptor()), entries(defaultSecurityDescriptor('any')));
  await assert.rejects(listenNamedPipe(uniqueName(), { allow: { uids: [1] } }), { code: 'ERR_INTERPROCESS_UNSUPPORTED' });
});

test('Windows: an allow predicate sees the client\'s process id; a refused client is closed, counted and reported', { skip: windowsOnly }, async () => {
  const name = nsName(uniqueName());
  await using listener = await listen(name, { allow: (peer) => peer.pid !== process.pid });
  let connections = 0;
  listener.on('connection', () => connections++);
  const refused = once(listener, 'refused');
  const client = await connect(name);
  const [credentials] = (await refused) as [{ pid: number }];
  assert.equal(credentials.pid, process.pid);
  assert.equal(listener.refused, 1);
  await once(client.on('error', () => {}), 'close');
  assert.equal(connections, 0);
});
