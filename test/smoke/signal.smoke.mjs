// Signals: the platform's list, and a signal to another process.
import assert from 'node:assert/strict';
import { sendSignal, signals } from 'interprocess';

export const title = 'signals';

export async function run(smoke) {
  await smoke.check('signals() lists SIGTERM, SIGKILL is not catchable', () => {
    const byName = new Map(signals().map((s) => [s.name, s]));
    assert.equal(byName.get('SIGTERM')?.canSend, true);
    assert.equal(byName.get('SIGKILL')?.canCatch, false);
  });
  await smoke.check('SIGTERM ends another process', async () => {
    const child = smoke.spawnChild('signal.smoke.mjs', []);
    await new Promise((resolve) => setTimeout(resolve, 300));
    sendSignal(child.pid, 'SIGTERM');
    const how = await child.exited;
    assert.ok(how !== 0, `the child was stopped (${how})`);
    return String(how);
  });
}

export async function child() {
  setInterval(() => {}, 1000);
}
