// Random and malicious frames from another process into a Channel server and an RPC server, 3000
// each, each buffer on its own connection: every one ends its own channel with a typed error (or
// nothing), the server keeps serving, and descriptors and memory come back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Channel, type RpcChannel, connectRpc, listen, nsName, serveRpc } from 'interprocess';
import { openFds, spawnFixture, uniqueName } from '../helpers.js';
import { fdsBack, figure, mib, rssSampler, typed } from './fault.js';

const COUNT = 3000;
/** The codes a hostile frame may end a channel with. */
const EXPECTED = new Set(['ERR_INTERPROCESS_FRAME_TOO_LARGE', 'ERR_INTERPROCESS_TRUNCATED', 'ERR_INTERPROCESS_DECODE', 'ECONNRESET', 'EPIPE', 'ERR_INTERPROCESS_CLOSED']);

function tally(codes: Map<string, number>, error: unknown, untyped: unknown[]): void {
  if (error === undefined || error === null) return;
  if (!typed(error)) untyped.push(error);
  const code = String((error as { code?: string }).code);
  codes.set(code, (codes.get(code) ?? 0) + 1);
}

test(`${COUNT} random and malicious buffers into a Channel server: typed errors only, nothing leaks`, { timeout: 120_000 }, async (t) => {
  const raw = uniqueName('frames');
  await using listener = await listen(nsName(raw));
  const codes = new Map<string, number>();
  const untyped: unknown[] = [];
  let open = 0;
  let messages = 0;
  listener.on('connection', (conn) => {
    open++;
    conn.on('error', () => {});
    const channel = new Channel(conn, { maxMessageSize: 1 << 20 });
    channel.on('message', () => messages++);
    channel.on('error', () => {});
    channel.on('close', (error) => {
      open--;
      tally(codes, error, untyped);
    });
  });
  await sleep(10);
  const baseline = openFds();
  const rss = rssSampler();
  const attacker = spawnFixture(t, 'fault-frames', [raw, String(COUNT), '1']);
  assert.equal((await attacker.next<{ sent: number }>('done')).sent, COUNT);
  while (open > 0) await sleep(10);
  const back = await fdsBack(baseline);
  const peak = rss.stop();
  figure(`Channel server: ${COUNT} hostile buffers, ${messages} valid messages among them, channel ends ${JSON.stringify(Object.fromEntries(codes))}, fds back in ${back.ms} ms, peak RSS +${mib(peak)}`);
  assert.deepEqual(untyped.map(String), []);
  for (const code of codes.keys()) assert.ok(EXPECTED.has(code), `unexpected code ${code}`);
  assert.equal(back.fds, baseline);
  assert.ok(peak < 200 * 1048576, `memory bounded (+${mib(peak)})`);
});

test(`${COUNT} random and malicious buffers into an RPC server: typed errors only, the server still serves, nothing leaks`, { timeout: 120_000 }, async (t) => {
  const raw = uniqueName('frames-rpc');
  await using server = await serveRpc(nsName(raw), { maxMessageSize: 1 << 20 });
  server.handle('echo', (body) => body);
  const codes = new Map<string, number>();
  const untyped: unknown[] = [];
  server.on('connection', (channel: RpcChannel) => channel.on('close', (error) => tally(codes, error, untyped)));
  await sleep(10);
  const baseline = openFds();
  const rss = rssSampler();
  const attacker = spawnFixture(t, 'fault-frames', [raw, String(COUNT), '2']);
  assert.equal((await attacker.next<{ sent: number }>('done')).sent, COUNT);
  while (server.channels.size > 0) await sleep(10);
  const back = await fdsBack(baseline);
  const peak = rss.stop();
  figure(`RPC server: ${COUNT} hostile buffers, channel ends ${JSON.stringify(Object.fromEntries(codes))}, fds back in ${back.ms} ms, peak RSS +${mib(peak)}`);
  assert.deepEqual(untyped.map(String), []);
  for (const code of codes.keys()) assert.ok(EXPECTED.has(code), `unexpected code ${code}`);
  assert.equal(back.fds, baseline);
  assert.ok(peak < 200 * 1048576, `memory bounded (+${mib(peak)})`);
  const good = await connectRpc(nsName(raw));
  assert.deepEqual(await good.request('echo', { still: 'served' }), { still: 'served' });
  await good.close();
});
