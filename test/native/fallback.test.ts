// Without the addon, what Node core can do still works, and native-only calls say why not.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { scratchDir, spawnFixture } from '../helpers.js';

test('without the native addon: local sockets work, peer credentials and Unix datagram sockets fail with ERR_INTERPROCESS_NATIVE', async (t) => {
  const socketPath = path.join(scratchDir(t), 'fallback.sock');
  const child = spawnFixture(t, 'no-native', [socketPath], { ...process.env, INTERPROCESS_NATIVE: '0' });
  const report = await child.next<{ status: { loaded: boolean; reason: string }; echoed: string; mode: number; error: { code: string; message: string }; unixError: { code: string; message: string } }>('report');
  assert.equal(report.status.loaded, false);
  assert.match(report.status.reason, /INTERPROCESS_NATIVE=0/);
  assert.equal(report.echoed, 'works without the addon');
  assert.equal(report.mode, 0o600);
  assert.equal(report.error.code, 'ERR_INTERPROCESS_NATIVE');
  assert.match(report.error.message, /Reading peer credentials needs the interprocess native addon/);
  assert.match(report.error.message, /npm explore interprocess -- node-gyp rebuild/);
  assert.equal(report.unixError.code, 'ERR_INTERPROCESS_NATIVE');
  assert.match(report.unixError.message, /Unix datagram sockets needs the interprocess native addon/);
  assert.equal((await child.exited).code, 0);
});
