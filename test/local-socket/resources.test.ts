// No descriptor leaks across every path: success, failed listens, failed connects, takeover.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, listen, nsName } from 'interprocess';
import { leaveStaleSocket, openFds, readAll, scratchDir, uniqueName } from '../helpers.js';

test('no descriptor leaks across listen, connect, errors and takeover', { timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  // Warm up lazily created handles (the addon, libuv's signal pipe, ...) before counting.
  await (await listen(path.join(dir, 'warm.sock'))).close();
  await sleep(10);
  const before = openFds();

  for (let i = 0; i < 20; i++) {
    const socketPath = path.join(dir, `cycle-${i}.sock`);
    const listener = await listen(socketPath, { mode: 0o600 });
    listener.on('connection', (conn) => conn.end('x'));
    assert.equal(String(await readAll(await connect(socketPath))), 'x');
    await assert.rejects(listen(socketPath), { code: 'EADDRINUSE' });
    await listener.close();
    await assert.rejects(connect(socketPath), { code: 'ENOENT' });
    await assert.rejects(connect(socketPath, { wait: true, timeout: 20 }), { code: 'ETIMEDOUT' });
    const abstract = nsName(uniqueName());
    const a = await listen(abstract);
    await assert.rejects(listen(abstract), { code: 'EADDRINUSE' });
    await a.close();
  }
  fs.writeFileSync(path.join(dir, 'file'), '');
  await assert.rejects(listen(path.join(dir, 'file')), { code: 'EADDRINUSE' });
  await assert.rejects(listen(path.join(dir, 'missing-dir', 's.sock')), { code: 'ENOENT' });

  const stalePath = path.join(dir, 'stale.sock');
  await leaveStaleSocket(t, stalePath);
  await (await listen(stalePath)).close();

  await sleep(50); // let closed handles finish closing
  assert.equal(openFds(), before);
});
