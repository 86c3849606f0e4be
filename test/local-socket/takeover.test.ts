// Safe takeover of socket files: stale ones are replaced, live ones and non-sockets never are,
// and two servers starting at once on one name do not both win. On Windows there are no socket
// files (a pipe's name goes with its last handle): the file tests skip there, and what Windows has
// instead is checked: a live name is refused (FILE_FLAG_FIRST_PIPE_INSTANCE, which Wine does not
// enforce), and a name is free again once its server closes or dies.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { connect, listen } from 'interprocess';
import { leaveStaleSocket, notOnWindows, readAll, scratchDir, spawnFixture, testSocketPath, wine } from '../helpers.js';

const windows = process.platform === 'win32';
const firstInstanceNotEnforced = wine && 'Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE: a second server on a live pipe name succeeds there';

test('a stale socket file left by a SIGKILLed server is taken over', { skip: notOnWindows.socketFile }, async (t) => {
  const socketPath = path.join(scratchDir(t), 'stale.sock');
  await leaveStaleSocket(t, socketPath);
  assert.ok(fs.lstatSync(socketPath).isSocket(), 'the killed server left its socket file');
  await assert.rejects(connect(socketPath), { code: 'ECONNREFUSED' });

  await using listener = await listen(socketPath);
  listener.on('connection', (conn) => conn.end('new server'));
  assert.equal(String(await readAll(await connect(socketPath))), 'new server');
});

test('a name is free again after its server closes or dies: a new server gets it, clients reach it', { timeout: 30_000 }, async (t) => {
  const socketPath = testSocketPath(t, 'again.sock');
  for (let round = 0; round < 2; round++) {
    const listener = await listen(socketPath);
    listener.on('connection', (conn) => conn.end(`server ${round}`));
    assert.equal(String(await readAll(await connect(socketPath))), `server ${round}`);
    await listener.close();
  }
  await leaveStaleSocket(t, socketPath); // a server in another process, SIGKILLed while listening
  // Unix: the killed server's file is left, refusing clients; Windows: the pipe went with it.
  await assert.rejects(connect(socketPath), { code: windows ? 'ENOENT' : 'ECONNREFUSED' });
  await using listener = await listen(socketPath);
  listener.on('connection', (conn) => conn.end('after the killed one'));
  assert.equal(String(await readAll(await connect(socketPath))), 'after the killed one');
});

test('a live server in another process is refused with EADDRINUSE and keeps working', { skip: firstInstanceNotEnforced }, async (t) => {
  const socketPath = testSocketPath(t, 'live.sock');
  const live = spawnFixture(t, 'stale-server', [socketPath]);
  await live.next('listening');
  await assert.rejects(listen(socketPath), (e: { code: string; message: string }) => {
    assert.equal(e.code, 'EADDRINUSE');
    assert.ok(e.message.includes(socketPath), 'the error names the path');
    return true;
  });
  assert.equal(String(await readAll(await connect(socketPath))), 'alive');
});

test('a live server that is not ours (no lock file) is refused too, after a probe', { skip: firstInstanceNotEnforced }, async (t) => {
  // On Windows: Node's own pipe server (its first instance claims the name; there is no probe).
  const socketPath = testSocketPath(t, 'foreign.sock');
  const foreign = net.createServer((conn) => conn.on('error', () => {}).end('foreign')); // our probe connects and leaves
  await new Promise<void>((resolve) => foreign.listen(socketPath, resolve));
  t.after(() => foreign.close());
  await assert.rejects(listen(socketPath), { code: 'EADDRINUSE' });
  assert.equal(String(await readAll(net.connect(socketPath))), 'foreign');
});

test('a regular file at the path is never removed', { skip: notOnWindows.socketFile }, async (t) => {
  const socketPath = path.join(scratchDir(t), 'precious.sock');
  fs.writeFileSync(socketPath, 'do not delete');
  await assert.rejects(listen(socketPath), (e: { code: string; message: string }) => {
    assert.equal(e.code, 'EADDRINUSE');
    assert.match(e.message, /not a socket/);
    return true;
  });
  assert.equal(fs.readFileSync(socketPath, 'utf8'), 'do not delete');
  assert.deepEqual(fs.readdirSync(path.dirname(socketPath)), ['precious.sock'], 'no staging or lock files left');
});

test('takeOver: false refuses even a stale socket file', { skip: notOnWindows.socketFile }, async (t) => {
  const socketPath = path.join(scratchDir(t), 'keep.sock');
  await leaveStaleSocket(t, socketPath);
  await assert.rejects(listen(socketPath, { takeOver: false }), { code: 'EADDRINUSE' });
  assert.ok(fs.lstatSync(socketPath).isSocket());
});

test('the file is removed on close only if it is still ours', { skip: notOnWindows.socketFile }, async (t) => {
  const socketPath = path.join(scratchDir(t), 'replaced.sock');
  const listener = await listen(socketPath);
  fs.unlinkSync(socketPath); // someone else removes it and puts their own file there
  fs.writeFileSync(socketPath, 'theirs');
  await listener.close();
  assert.equal(fs.readFileSync(socketPath, 'utf8'), 'theirs');
});

test('two listens at once in one process: exactly one wins', { skip: firstInstanceNotEnforced }, async (t) => {
  const socketPath = testSocketPath(t, 'twin.sock');
  const results = await Promise.allSettled([listen(socketPath), listen(socketPath), listen(socketPath)]);
  const won = results.filter((r) => r.status === 'fulfilled');
  assert.equal(won.length, 1);
  for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'EADDRINUSE');
  await (won[0] as PromiseFulfilledResult<import('interprocess').LocalSocketListener>).value.close();
});

test('servers in four processes starting at once on one stale name: exactly one wins', { skip: firstInstanceNotEnforced, timeout: 30_000 }, async (t) => {
  const socketPath = testSocketPath(t, 'race.sock');
  for (let round = 0; round < 3; round++) {
    // A stale file to fight over (rounds > 0 also race past the previous winner's leftovers). On
    // Windows the killed server leaves nothing: the four race for a free name.
    await leaveStaleSocket(t, socketPath);
    const racers = Array.from({ length: 4 }, () => spawnFixture(t, 'race-listen', [socketPath]));
    await Promise.all(racers.map((r) => r.next('ready')));
    for (const r of racers) r.send({ type: 'go' });
    const results = await Promise.all(racers.map((r) => r.next<{ won: boolean; code?: string; pid?: number }>('result')));
    const winners = results.filter((r) => r.won);
    assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(results)}`);
    for (const r of results) if (!r.won) assert.equal(r.code, 'EADDRINUSE');
    // The socket file belongs to the winner.
    assert.equal(String(await readAll(await connect(socketPath))), String(winners[0]!.pid));
    for (const r of racers) r.send({ type: 'exit' });
    await Promise.all(racers.map((r) => r.exited));
    if (windows) await assert.rejects(connect(socketPath), { code: 'ENOENT' }, 'the name went with the winner');
    else assert.equal(fs.existsSync(socketPath), false, 'the winner removed its file on exit');
  }
});
