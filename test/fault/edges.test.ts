// Hostile peers at the edges where the package hands a connection to someone else's code: a
// UnixSocket's Duplex (toDuplex()) whose peer is SIGKILLed mid-transfer, HTTP through
// LocalSocketAgent to a server that accepts and never answers, and the CLI copying stdin to a peer
// that never reads. Each must end (or hold back) within a bound, typed, leaking nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalSocketAgent, connectUnix, nsName } from 'interprocess';
import { openFds, patternBytes, spawnFixture, uniqueName } from '../helpers.js';
import { startCli } from '../cli/cli-helpers.js';
import { fdsBack, figure, mib, typed } from './fault.js';

// The peers are Unix stream sockets and local sockets on '@' names; the Windows suite does not list
// this file.
const unixOnly = process.platform === 'win32' && 'Unix sockets (toDuplex) and the fault peer are Unix-only';

test('toDuplex(): the peer SIGKILLed in the middle of a two-way pipe ends both pipelines with a typed error, and every descriptor closes', { skip: unixOnly, timeout: 60_000 }, async (t) => {
  const baseline = openFds();
  const raw = uniqueName();
  const echo = spawnFixture(t, 'unix-echo', ['stream', 'ns', raw]);
  await echo.next('ready');
  const socket = await connectUnix(nsName(raw));
  const duplex = socket.toDuplex();
  const chunk = patternBytes(64 * 1024, 3);
  // An endless source: only the peer's death can end this transfer.
  const source = Readable.from((function* () {
    for (;;) yield chunk;
  })());
  let received = 0;
  const sink = new Writable({
    write(data: Buffer, _encoding, callback) {
      received += data.length;
      if (received >= 4 * 1024 * 1024 && echo.child.exitCode === null && echo.child.signalCode === null) echo.child.kill('SIGKILL');
      callback();
    },
  });
  const outcomes = await Promise.allSettled([pipeline(source, duplex), pipeline(duplex, sink)]);
  figure(`toDuplex, peer SIGKILLed after ${mib(received)} echoed: ${outcomes.map((o) => (o.status === 'rejected' ? (o.reason as { code?: string }).code : 'ended')).join(' / ')}`);
  const writing = outcomes[0]!;
  assert.equal(writing.status, 'rejected', 'an endless write cannot end well when the peer dies');
  assert.ok(typed(writing.reason) || ['EPIPE', 'ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE'].includes((writing.reason as { code?: string }).code ?? ''), `writing ends with a code: ${String(writing.reason)}`);
  const reading = outcomes[1]!;
  if (reading.status === 'rejected') {
    assert.ok((reading.reason as { code?: string }).code, `reading ends with a code: ${String(reading.reason)}`);
  }
  assert.equal(socket.closed, true, 'the socket under the Duplex is closed');
  const back = await fdsBack(baseline);
  assert.equal(back.fds, baseline, 'no descriptor left open');
});

test('LocalSocketAgent to a server that accepts and never answers: the request\'s timeout fires, destroying it ends the request typed, and the agent closes its sockets', { skip: unixOnly, timeout: 60_000 }, async (t) => {
  const raw = uniqueName();
  const peer = spawnFixture(t, 'fault-peer', ['silent', 'local', raw]);
  await peer.next('ready');
  const baseline = openFds();
  const agent = new LocalSocketAgent(nsName(raw), { keepAlive: true, maxSockets: 2 });
  const outcomes = await Promise.all([1, 2, 3].map((i) => new Promise<{ timedOut: boolean; error: unknown }>((resolve) => {
    let timedOut = false;
    const request = http.get({ agent, path: `/${i}`, timeout: 300 }, () => resolve({ timedOut, error: new Error('a response from a server that never answers') }));
    request.on('timeout', () => {
      timedOut = true;
      request.destroy();
    });
    request.on('error', (error) => resolve({ timedOut, error }));
  })));
  for (const { timedOut, error } of outcomes) {
    assert.equal(timedOut, true, 'the request timed out');
    assert.equal((error as { code?: string }).code, 'ECONNRESET', `a destroyed request ends with Node's ECONNRESET: ${String(error)}`);
  }
  const accepted = await peer.next<{ count: number }>('accepted');
  assert.ok(accepted.count >= 1, 'the requests reached the server');
  agent.destroy();
  const back = await fdsBack(baseline);
  figure(`LocalSocketAgent, 3 requests to a silent server (2 sockets): all timed out, descriptors back in ${back.ms} ms`);
  assert.equal(back.fds, baseline, 'the agent left no connection open');
});

/** The CLI's resident memory, from /proc (Linux). */
function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

for (const [address, type] of [['@', 'local'], ['seqpacket:@', 'seqpacket']] as const) {
  test(`interprocess connect ${address}NAME to a peer that never reads: stdin is held back (bounded bytes taken, bounded memory), and the command ends when killed`, { skip: process.platform !== 'linux' && 'the peer and /proc are Linux here', timeout: 120_000 }, async (t) => {
    const raw = uniqueName();
    const peer = spawnFixture(t, 'fault-peer', ['silent', type, raw]);
    await peer.next('ready');
    const cli = startCli(['connect', `${address}${raw}`], ['pipe', 'ignore', 'pipe']);
    t.after(() => cli.kill('SIGKILL'));
    let errors = '';
    cli.stderr!.on('data', (chunk: Buffer) => (errors += chunk));
    cli.stdin!.on('error', () => {}); // EPIPE once killed
    await peer.next('accepted');
    const line = Buffer.from(`${'x'.repeat(1023)}\n`); // one message per line with --framing line
    let taken = 0;
    // Write until the command stops taking stdin for 2 s (or 256 MiB went in: then it is not
    // holding back at all).
    while (taken < 256 * 1024 * 1024) {
      const batch = Buffer.concat(Array.from({ length: 64 }, () => line));
      if (cli.stdin!.write(batch)) {
        taken += batch.length;
        continue;
      }
      taken += batch.length;
      const drained = await Promise.race([new Promise((resolve) => cli.stdin!.once('drain', () => resolve(true))), sleep(2000).then(() => false)]);
      if (!drained) break;
    }
    const rss = rssOf(cli.pid!);
    figure(`CLI connect ${address}NAME, peer never reads: took ${mib(taken)} of stdin, then held back; its RSS ${mib(rss)}`);
    assert.ok(taken < 64 * 1024 * 1024, `the command holds stdin back (took ${mib(taken)})`);
    assert.ok(rss < 256 * 1024 * 1024, `its memory is bounded (RSS ${mib(rss)})`);
    assert.equal(cli.exitCode, null, `still running, waiting for the peer: ${errors}`);
    cli.kill('SIGTERM');
    const code = await new Promise((resolve) => cli.once('exit', (c, s) => resolve(c ?? s)));
    assert.notEqual(code, null);
  });
}
