// Message channels: an RPC server and a client over a local socket, and the command line.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import { Channel, connectRpc, nsName, serveRpc, unixSocketPair } from 'interprocess';

export const title = 'message channels and the command line';

export async function run(smoke) {
  await smoke.check('serveRpc and connectRpc: a request and its reply', async () => {
    const name = nsName(smoke.uniqueName('smoke-rpc'));
    const server = await serveRpc(name);
    server.handle('add', ([a, b]) => a + b);
    const client = await connectRpc(name, { requestTimeout: 10_000 });
    assert.equal(await client.request('add', [2, 3]), 5);
    await client.close();
    await server.close();
  });
  await smoke.check('serveRpc and connectRpc with an authkey: the right key is served, a wrong one refused', async () => {
    const name = nsName(smoke.uniqueName('smoke-auth'));
    const server = await serveRpc(name, { authkey: 'smoke key' });
    server.handle('add', ([a, b]) => a + b);
    const client = await connectRpc(name, { authkey: 'smoke key', requestTimeout: 10_000 });
    assert.equal(await client.request('add', [2, 3]), 5);
    await client.close();
    await assert.rejects(connectRpc(name, { authkey: 'wrong key' }), { code: 'ERR_INTERPROCESS_AUTH' });
    await server.close();
  });
  if (smoke.platform !== 'win32') {
    await smoke.check('a Channel on a Unix stream socket pair: a message with a descriptor', async () => {
      const [a, b] = unixSocketPair({ type: 'stream' });
      const left = new Channel(a);
      const right = new Channel(b);
      const fd = fs.openSync(process.execPath, 'r');
      const got = new Promise((resolve) => right.once('message', (message, fds) => resolve([message, fds?.map((d) => d.kind)])));
      await left.send({ hello: 1 }, { fds: [fd] });
      fs.closeSync(fd);
      assert.deepEqual(await got, [{ hello: 1 }, ['file']]);
      left.destroy();
      right.destroy();
    });
  }
  await smoke.check('the interprocess command runs: info --json', () => {
    const bin = createRequire(import.meta.url).resolve('interprocess/package.json').replace(/package\.json$/, 'bin/interprocess.js');
    const [command, ...lead] = smoke.launcher;
    const report = JSON.parse(execFileSync(command, [...lead, bin, 'info', '--json'], { encoding: 'utf8' }));
    assert.equal(report.native.loaded, true);
    return report.platform;
  });
}
