// Load: many local-socket connections and many RPC clients at once, from another process. Every
// one is served, and the server's descriptors come back to their baseline once they leave.
// Full scale (INTERPROCESS_FAULT_FULL=1): 1000 of each; otherwise 250.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { listen, nsName, serveRpc } from 'interprocess';
import { openFds, sanitizerScale, spawnFixture, uniqueName } from '../helpers.js';
import { fdsBack, figure, full, mib, rssSampler } from './fault.js';

const COUNT = full ? 1000 : 250;

test(`${COUNT} concurrent local-socket connections: all echoed, descriptors back to baseline`, { timeout: 180_000 }, async (t) => {
  const raw = uniqueName('load');
  await using listener = await listen(nsName(raw), { backlog: 1024 });
  let open = 0;
  let peakOpen = 0;
  listener.on('connection', (conn) => {
    open++;
    peakOpen = Math.max(peakOpen, open);
    conn.on('error', () => {});
    conn.on('close', () => open--);
    conn.pipe(conn);
  });
  await sleep(10);
  const baseline = openFds();
  const rss = rssSampler();
  const started = performance.now();
  const clients = spawnFixture(t, 'clients', ['ns', raw, String(COUNT), String(COUNT), '16384']);
  const report = await clients.next<{ ok: number; failures: string[]; maxInFlight: number }>('done');
  const served = performance.now() - started;
  assert.deepEqual(report.failures.slice(0, 5), []);
  assert.equal(report.ok, COUNT);
  const back = await fdsBack(baseline, 30_000);
  const peak = rss.stop();
  figure(`${COUNT} connections (${peakOpen} open at once): served in ${served.toFixed(0)} ms, fds back to baseline in ${back.ms} ms, peak RSS +${mib(peak)}`);
  assert.equal(back.fds, baseline, 'every accepted connection was closed');
  assert.equal(open, 0);
  // Overlap proves the clients were served concurrently. Under ASan (sanitizerScale > 1) accepting
  // is several times slower, so the overlap says how fast the instrumented build is, not whether
  // we serve concurrently: that is asserted by the plain passes; the ASan pass checks memory.
  if (sanitizerScale === 1) assert.ok(peakOpen >= Math.min(COUNT / 4, 100), `connections overlapped (${peakOpen} at once)`);
  assert.ok(peak < 400 * 1048576, `the server's memory stayed bounded (+${mib(peak)})`);
});

test(`${COUNT} RPC clients at once, 5 requests each: all answered, channels and descriptors back to baseline`, { timeout: 180_000 }, async (t) => {
  const raw = uniqueName('load-rpc');
  await using server = await serveRpc<{ c: number; r: number }>(nsName(raw), { backlog: 1024 });
  server.handle('echo', (body) => body);
  await sleep(10);
  const baseline = openFds();
  const rss = rssSampler();
  const started = performance.now();
  const clients = spawnFixture(t, 'rpc-clients', [raw, String(COUNT), '5']);
  const report = await clients.next<{ ok: number; failures: string[] }>('done');
  const served = performance.now() - started;
  assert.deepEqual(report.failures.slice(0, 5), []);
  assert.equal(report.ok, COUNT * 5);
  assert.equal(server.channels.size, COUNT);
  const peakOpen = server.channels.size;
  clients.send({ type: 'exit' });
  await clients.exited;
  const closing = performance.now();
  while (server.channels.size > 0 && performance.now() - closing < 30_000) await sleep(10);
  const back = await fdsBack(baseline, 30_000);
  const peak = rss.stop();
  figure(`${COUNT} RPC clients (${peakOpen} channels at once): ${COUNT * 5} requests answered in ${served.toFixed(0)} ms, fds back to baseline ${back.ms} ms after they left, peak RSS +${mib(peak)}`);
  assert.equal(server.channels.size, 0, 'every channel closed with its client');
  assert.equal(back.fds, baseline, 'every accepted connection was closed');
  assert.ok(peak < 400 * 1048576, `the server's memory stayed bounded (+${mib(peak)})`);
});
