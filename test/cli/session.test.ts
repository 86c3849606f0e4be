// When listen and connect end: socat's -t rule. Once the peer has ended, stdin goes on while it
// keeps coming, and once idle for --linger ms our side ends and the command exits, even with a
// stdin that never ends; the end of stdin alone ends nothing but our side. With socat as the peer.
// (A file still being sent when the peer ends is not cut: cli.test.ts, whose listeners' stdin is
// empty, so they end first.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { readAll, scratchDir, uniqueName } from '../helpers.js';
import { exitWithin, hasSocat, startCli, waitFor } from './cli-helpers.js';

const skip = process.platform === 'win32' ? 'Unix sockets, socat as the peer' : hasSocat ? false : 'socat is not installed';
// Generous: these detect a command that never exits, they do not time it.
const HANG = 20_000;

for (const kind of ['filesystem', 'namespaced', 'seqpacket'] as const) {
  const seqpacketSkip = kind === 'seqpacket' && process.platform !== 'linux' ? 'seqpacket: tested on Linux' : false;
  test(`listen exits once the peer has ended, while its stdin stays open (${kind})`, { timeout: 60_000, skip: skip || seqpacketSkip }, async (t) => {
    const dir = scratchDir(t);
    const name = uniqueName();
    const [ours, theirs] = {
      filesystem: [path.join(dir, 'l.sock'), `UNIX-CONNECT:${path.join(dir, 'l.sock')}`],
      namespaced: [`@${name}`, `ABSTRACT-CONNECT:${name}`],
      seqpacket: [`seqpacket:${path.join(dir, 'l.sock')}`, `UNIX-CONNECT:${path.join(dir, 'l.sock')},socktype=5`],
    }[kind];
    // stdin is a pipe this test never ends, as a terminal would be.
    const listener = startCli(['listen', ours!, ...(kind === 'seqpacket' ? ['--framing', 'raw'] : [])]);
    t.after(() => listener.kill());
    const received = readAll(listener.stdout!);
    await waitFor(listener.stderr!, /listening on/);
    const peer = spawn('socat', ['-u', '-', theirs!], { stdio: ['pipe', 'ignore', 'inherit'] });
    t.after(() => peer.kill());
    peer.stdin!.end('hello from socat\n');
    assert.equal(await exitWithin(listener, HANG), 0, 'the listener exits after the peer has ended');
    assert.equal((await received).toString(), 'hello from socat\n');
  });
}

test('what stdin sends after the peer has ended reaches it; once stdin is idle for --linger, both exit', { timeout: 60_000, skip }, async (t) => {
  const socketPath = path.join(scratchDir(t), 'l.sock');
  const listener = startCli(['listen', socketPath, '--linger', '3000']);
  t.after(() => listener.kill());
  await waitFor(listener.stderr!, /listening on/);
  // socat sends its request, ends its side, and waits (up to -t) for our answer and its end.
  const peer = spawn('socat', ['-t', '30', '-', `UNIX-CONNECT:${socketPath}`], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => peer.kill());
  const answer = readAll(peer.stdout!);
  peer.stdin!.end('request\n');
  await waitFor(listener.stdout!, /request\n/);
  listener.stdin!.write('answer\n'); // and stdin stays open: --linger ends it
  assert.equal(await exitWithin(listener, HANG), 0);
  assert.equal(await exitWithin(peer, HANG), 0, 'socat saw our end');
  assert.equal((await answer).toString(), 'answer\n');
});

test('the end of stdin ends only our side: connect < /dev/null still reads the whole answer', { timeout: 60_000, skip }, async (t) => {
  const socketPath = path.join(scratchDir(t), 's.sock');
  // socat answers 1.5 s after our end (3x the default linger): we must still be there.
  const server = spawn('socat', ['-t', '30', `UNIX-LISTEN:${socketPath}`, 'SYSTEM:cat >/dev/null; sleep 1.5; echo late answer'], { stdio: ['ignore', 'ignore', 'inherit'] });
  t.after(() => server.kill());
  const connector = startCli(['connect', socketPath, '--wait', '--timeout', '20000'], ['ignore', 'pipe', 'inherit']);
  t.after(() => connector.kill());
  const answer = readAll(connector.stdout!);
  assert.equal(await exitWithin(connector, HANG), 0);
  assert.equal((await answer).toString(), 'late answer\n');
});
