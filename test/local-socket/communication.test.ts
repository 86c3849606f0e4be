// One server, 80 clients in another process (at most 6 at once), each sending and receiving at
// the same time, every byte checked: for filesystem and namespaced names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LocalSocketName, fsName, listen, nsName } from 'interprocess';
import { spawnFixture, testSocketPath, uniqueName } from '../helpers.js';

async function serveAndCheck(t: import('node:test').TestContext, name: LocalSocketName, kind: 'fs' | 'ns', raw: string) {
  await using listener = await listen(name);
  let accepted = 0;
  let maxOpen = 0;
  let open = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      accepted++;
      open++;
      maxOpen = Math.max(maxOpen, open);
      conn.on('close', () => open--);
      conn.pipe(conn);
    }
  })();
  const clients = spawnFixture(t, 'clients', [kind, raw, '80', '6', String(256 * 1024)]);
  const report = await clients.next<{ ok: number; failures: string[]; maxInFlight: number }>('done');
  assert.deepEqual(report.failures, []);
  assert.equal(report.ok, 80);
  assert.ok(report.maxInFlight <= 6 && report.maxInFlight >= 2, `clients overlapped (${report.maxInFlight} at once)`);
  assert.equal(accepted, 80);
  if (process.platform !== 'win32') assert.ok(maxOpen <= 6, `server saw at most 6 open connections (${maxOpen})`);
  // On Windows the server learns of a new client (our pipe's accept) and of a gone one (libuv's
  // read of the pipe) by different paths, so a client's next connection can arrive before its
  // last one's end: there, only check that every connection of the server closes.
  while (open > 0) await sleep(10);
  await listener.close();
  await serving;
}

test('80 clients in another process, filesystem name', { timeout: 60_000 }, async (t) => {
  const socketPath = testSocketPath(t, 'echo.sock');
  await serveAndCheck(t, fsName(socketPath), 'fs', socketPath);
});

test('80 clients in another process, namespaced name', { timeout: 60_000 }, async (t) => {
  const raw = uniqueName();
  await serveAndCheck(t, nsName(raw), 'ns', raw);
});

test('a server in another process serves this one, both directions at once', { timeout: 30_000 }, async (t) => {
  const socketPath = testSocketPath(t, 'child.sock');
  const server = spawnFixture(t, 'echo-server', ['fs', socketPath]);
  await server.next('listening');
  const { connect } = await import('interprocess');
  const { patternBytes } = await import('../helpers.js');
  const payload = patternBytes(8 * 1024 * 1024, 7);
  const conn = await connect(socketPath);
  const chunks: Buffer[] = [];
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    conn.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received === payload.length) conn.end();
    });
    conn.on('close', () => resolve());
    conn.on('error', reject);
  });
  conn.write(payload);
  await done;
  assert.ok(Buffer.concat(chunks).equals(payload), '8 MiB came back intact');
  server.send({ type: 'close' });
  await server.next('closed');
});
