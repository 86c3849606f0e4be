// Service managers: without one every call is a no-op (every target); with a notify socket of our
// own standing in for systemd's (Linux), READY=1 arrives from this process.
import assert from 'node:assert/strict';
import { bindDatagram, listenFds, notifyReady, nsName, startWatchdog } from 'interprocess';

export const title = 'service manager (socket activation, sd_notify)';

export async function run(smoke) {
  await smoke.check('without a manager: listenFds() is empty, notifyReady() resolves false, no watchdog', async () => {
    delete process.env.LISTEN_PID;
    delete process.env.NOTIFY_SOCKET;
    delete process.env.WATCHDOG_USEC;
    assert.deepEqual(listenFds(), []);
    assert.equal(await notifyReady(), false);
    const watchdog = startWatchdog();
    assert.equal(watchdog.interval, null);
    await watchdog.close();
  });
  if (process.platform !== 'linux') return;
  await smoke.check('notifyReady() reaches a notify socket, with our pid', async () => {
    const name = smoke.uniqueName('notify');
    const manager = await bindDatagram(nsName(name), { passCredentials: true });
    process.env.NOTIFY_SOCKET = `@${name}`;
    try {
      assert.equal(await notifyReady({ status: 'smoke' }), true);
      const message = await manager.receive();
      assert.equal(String(message.data), 'READY=1\nSTATUS=smoke');
      assert.equal(message.credentials.pid, process.pid);
    } finally {
      delete process.env.NOTIFY_SOCKET;
      await manager.close();
    }
  });
}
