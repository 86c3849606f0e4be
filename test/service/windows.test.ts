// What the service-manager exports do on Windows (run under Wine by test/wine/run.js): where no
// manager passed anything (LISTEN_PID, NOTIFY_SOCKET, WATCHDOG_USEC unset) they answer as on
// Unix, so portable service code calls them unconditionally; what cannot exist there (adopting a
// descriptor by number, the descriptor of a local socket or listener, variables a manager set)
// fails with ERR_INTERPROCESS_UNSUPPORTED.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalSocketListener, UnixListener, connect, listen, listenFds, notifyReady, notifyStatus, nsName, sdNotify, startWatchdog, storeFds } from 'interprocess';
import { uniqueName } from '../helpers.js';

const skip = process.platform !== 'win32' && 'Windows behaviour (run under Wine: node test/wine/run.js service/windows)';

test('Windows: without a manager, listenFds() finds nothing, notifications resolve false, the watchdog has no interval', { skip }, async () => {
  delete process.env.LISTEN_PID;
  delete process.env.NOTIFY_SOCKET;
  delete process.env.WATCHDOG_USEC;
  assert.deepEqual(listenFds(), []);
  assert.equal(await notifyReady(), false);
  assert.equal(await notifyStatus('x'), false);
  assert.equal(await storeFds([0]), false);
  const dog = startWatchdog();
  assert.equal(dog.interval, null);
  await dog.close();
});

test('Windows: variables a manager set, adopting by number and raw descriptors fail with ERR_INTERPROCESS_UNSUPPORTED', { skip }, async (t) => {
  process.env.LISTEN_PID = String(process.pid);
  process.env.LISTEN_FDS = '1';
  assert.throws(() => listenFds(), { code: 'ERR_INTERPROCESS_UNSUPPORTED', message: /Use listen\(\) or listenNamedPipe\(\)/ });
  assert.equal(process.env.LISTEN_PID, undefined, 'the variables are removed all the same');
  process.env.NOTIFY_SOCKET = '@manager';
  try {
    await assert.rejects(sdNotify('READY=1'), { code: 'ERR_INTERPROCESS_UNSUPPORTED', message: /Service Control Manager/ });
  } finally {
    delete process.env.NOTIFY_SOCKET;
  }
  await assert.rejects(LocalSocketListener.fromFd(3), { code: 'ERR_INTERPROCESS_UNSUPPORTED', message: /use listen\(\)/ });
  await assert.rejects(UnixListener.fromFd(3), { code: 'ERR_INTERPROCESS_UNSUPPORTED' });

  const name = nsName(uniqueName('windows-fd'));
  const listener = await listen(name);
  t.after(() => listener.close());
  listener.on('connection', (socket) => {
    assert.throws(() => socket.fd, { code: 'ERR_INTERPROCESS_UNSUPPORTED', message: /named pipe/ });
    socket.destroy();
  });
  assert.throws(() => listener.fd, { code: 'ERR_INTERPROCESS_UNSUPPORTED', message: /named pipe/ });
  const client = await connect(name);
  assert.throws(() => client.fd, { code: 'ERR_INTERPROCESS_UNSUPPORTED' });
  client.destroy();
});

test('Unix: the raw descriptors of a LocalSocket and its listener', { skip: process.platform === 'win32' && 'Unix (the Windows test above checks the error there)' }, async (t) => {
  const name = nsName(uniqueName('unix-fd'));
  const listener = await listen(name);
  t.after(() => listener.close());
  const fd = listener.fd;
  assert.ok(Number.isInteger(fd) && fd > 2);
  const accepted = new Promise<number>((resolve) => listener.once('connection', (socket) => {
    resolve(socket.fd);
    socket.destroy();
  }));
  const client = await connect(name);
  assert.ok(client.fd > 2 && client.fd !== fd);
  const acceptedFd = await accepted;
  assert.ok(acceptedFd > 2 && acceptedFd !== fd && acceptedFd !== client.fd);
  client.destroy();
  assert.equal(client.fd, -1, 'a closed socket has no descriptor');
  await listener.close();
  assert.throws(() => listener.fd, { code: 'ERR_INTERPROCESS_CLOSED' });
});
