// EMFILE on both sides: a server process out of descriptors (ulimit -n 256) with a local-socket
// listener and an RPC server, neither with an 'error' listener. Its own connect() and connectRpc()
// fail with a typed EMFILE; clients that connect meanwhile are either served or closed at once
// (libuv's EMFILE trick accepts and closes what it cannot keep): none hangs; the server neither
// spins nor crashes, and serves every client once descriptors free up.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, connectRpc, nsName } from 'interprocess';
import { request, spawnFixture, uniqueName } from '../helpers.js';
import { figure } from './fault.js';

const CLIENTS = 20;

test('EMFILE on client and server: listen() and serveRpc() survive, connect fails typed, every waiting client is served after', { skip: process.platform === 'win32' && 'the descriptor limit is set with ulimit, which Windows does not have (it has no per-process handle limit to exhaust)', timeout: 120_000 }, async (t) => {
  const a = uniqueName('emfile-listen');
  const b = uniqueName('emfile-rpc');
  const server = spawnFixture(t, 'fault-emfile', [a, b], process.env, {
    execPath: '/bin/sh',
    execArgv: ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath],
  });
  await server.next('listening');
  server.send({ type: 'fill' });
  const full = await server.next<{ client: Array<{ code: string; typed: boolean }>; held: number }>('full');
  assert.deepEqual(full.client, [{ code: 'EMFILE', typed: true }, { code: 'EMFILE', typed: true }], 'connect() and connectRpc() at EMFILE');
  // Clients connect while the server cannot take them: each is served or closed, none hangs.
  const plainDuring = Array.from({ length: CLIENTS }, async (_, i) => String(await request(await connect(nsName(a)), `hello ${i}`, `hello ${i}`.length)));
  const rpcDuring = Array.from({ length: CLIENTS }, async () => {
    const rpc = await connectRpc(nsName(b));
    try {
      return await rpc.request('ping');
    } finally {
      await rpc.close();
    }
  });
  const during = Promise.allSettled([...plainDuring, ...rpcDuring]);
  await sleep(500);
  server.send({ type: 'free' });
  const { cpuMs } = await server.next<{ cpuMs: number }>('freed');
  const settled = await Promise.race([during, sleep(30_000, undefined, { ref: false }).then(() => assert.fail('a client that connected during EMFILE hangs'))]);
  const refused = settled.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
  for (const r of refused) assert.ok(['ECONNRESET', 'EPIPE', 'ERR_INTERPROCESS_CLOSED'].includes(r.reason.code) || /ended after/.test(r.reason.message), String(r.reason));
  // After: every client is served.
  const freed = performance.now();
  const plain = Array.from({ length: CLIENTS }, async (_, i) => String(await request(await connect(nsName(a)), `hello ${i}`, `hello ${i}`.length)));
  const rpcs = Array.from({ length: CLIENTS }, async () => {
    const rpc = await connectRpc(nsName(b));
    try {
      return await rpc.request('ping');
    } finally {
      await rpc.close();
    }
  });
  const replies = await Promise.race([Promise.all([Promise.all(plain), Promise.all(rpcs)]), sleep(30_000, undefined, { ref: false }).then(() => assert.fail('clients not served within 30 s of freeing'))]);
  const servedMs = performance.now() - freed;
  figure(`EMFILE: ${full.held} descriptors filled the table; of ${2 * CLIENTS} clients that came meanwhile ${settled.length - refused.length} served and ${refused.length} closed at once, none hung; server CPU while full ${cpuMs.toFixed(0)} ms over ~500 ms; ${2 * CLIENTS} clients served ${servedMs.toFixed(0)} ms after freeing`);
  assert.deepEqual(replies[0], Array.from({ length: CLIENTS }, (_, i) => `hello ${i}`));
  assert.deepEqual(replies[1], Array(CLIENTS).fill('pong'));
  assert.ok(cpuMs < 400, `the full server does not spin (${cpuMs.toFixed(0)} ms of CPU in ~500 ms)`);
  assert.equal(server.child.exitCode, null, 'the server is alive');
});
