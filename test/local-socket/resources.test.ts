// No descriptor leaks across every path: success, failed listens, failed connects, takeover. On
// Windows the same paths count handles (the names are pipes there; the Unix-only failures, a
// regular file or a missing directory at the path, have no counterpart).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, listen, nsName } from 'interprocess';
import { leaveStaleSocket, openFds, readAll, scratchDir, testSocketPath, uniqueName, wine } from '../helpers.js';

const windows = process.platform === 'win32';

test('no descriptor leaks across listen, connect, errors and takeover', { timeout: 60_000 }, async (t) => {
  // Warm up lazily created handles (the addon, libuv's signal pipe, ...) before counting.
  const warm = testSocketPath(t, 'warm.sock');
  const warmListener = await listen(warm);
  warmListener.on('connection', (conn) => conn.end('x'));
  assert.equal(String(await readAll(await connect(warm))), 'x');
  await warmListener.close();
  await sleep(10);
  const before = openFds();

  for (let i = 0; i < 20; i++) {
    const socketPath = testSocketPath(t, `cycle-${i}.sock`);
    const listener = await listen(socketPath, windows ? {} : { mode: 0o600 });
    listener.on('connection', (conn) => conn.end('x'));
    assert.equal(String(await readAll(await connect(socketPath))), 'x');
    // Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE: a second listen would succeed there.
    if (!wine) await assert.rejects(listen(socketPath), { code: 'EADDRINUSE' });
    await listener.close();
    await assert.rejects(connect(socketPath), { code: 'ENOENT' });
    await assert.rejects(connect(socketPath, { wait: true, timeout: 20 }), { code: 'ETIMEDOUT' });
    const namespaced = nsName(uniqueName());
    const a = await listen(namespaced);
    if (!wine) await assert.rejects(listen(namespaced), { code: 'EADDRINUSE' });
    await a.close();
  }
  if (!windows) {
    const dir = scratchDir(t);
    fs.writeFileSync(path.join(dir, 'file'), '');
    await assert.rejects(listen(path.join(dir, 'file')), { code: 'EADDRINUSE' });
    await assert.rejects(listen(path.join(dir, 'missing-dir', 's.sock')), { code: 'ENOENT' });
  }

  // A server killed while listening: its stale file is taken over (Unix), its name is free (Windows).
  const stalePath = testSocketPath(t, 'stale.sock');
  await leaveStaleSocket(t, stalePath);
  await (await listen(stalePath)).close();

  await sleep(50); // let closed handles finish closing
  assert.equal(openFds(), before);
});
