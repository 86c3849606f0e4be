// The blocking client: connectSync and requestRpcSync in a child process, against a listen() echo
// server and a serveRpc() server in this one.
import assert from 'node:assert/strict';
import { connectSync, listen, nsName, requestRpcSync, serveRpc } from 'interprocess';

export const title = 'synchronous calls (connectSync, requestRpcSync)';

export async function run(smoke) {
  await smoke.check('connectSync and requestRpcSync from another process', async () => {
    const echo = nsName(smoke.uniqueName('smoke-sync'));
    const rpc = nsName(smoke.uniqueName('smoke-sync-rpc'));
    const listener = await listen(echo);
    listener.on('connection', (socket) => socket.pipe(socket));
    const server = await serveRpc(rpc);
    server.handle('add', ([a, b]) => a + b);
    const child = smoke.spawnChild('sync.smoke.mjs', [echo.name, rpc.name]);
    try {
      assert.equal(await child.exited, 0, 'the synchronous client failed');
      return `${echo}, ${rpc}`;
    } finally {
      child.kill();
      await server.close();
      await listener.close();
    }
  });
  await smoke.check('connectSync to a name nothing listens on: a typed error', () => {
    assert.throws(() => connectSync(nsName(smoke.uniqueName('smoke-nobody'))), (error) => ['ENOENT', 'ECONNREFUSED'].includes(error.code));
  });
}

export async function child([echo, rpc]) {
  const socket = connectSync(nsName(echo), { wait: true, timeout: 120_000 });
  socket.write('ping\n');
  assert.equal(socket.readUntil('\n', { timeout: 60_000 }).toString(), 'ping\n');
  socket.close();
  assert.equal(requestRpcSync(nsName(rpc), 'add', [2, 3], { wait: true, timeout: 60_000 }), 5);
}
