// Stream sockets with descriptors interoperate with the foundation's local sockets on the same
// names: our stream client talks to listen(), and connect() talks to our stream listener.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { connect, connectUnix, fsName, listen, listenUnix, nsName } from 'interprocess';
import { readAll, scratchDir, uniqueName } from '../helpers.js';

for (const kind of ['filesystem', 'abstract'] as const) {
  const nameFor = (t: import('node:test').TestContext) => (kind === 'filesystem' ? fsName(path.join(scratchDir(t), 'mixed.sock')) : nsName(uniqueName('mixed')));

  test(`our stream socket talks to a local-socket listener (${kind} name)`, async (t) => {
    const name = nameFor(t);
    await using listener = await listen(name, { allowHalfOpen: true });
    listener.on('connection', async (conn) => conn.end(`echo: ${await readAll(conn)}`));
    await using socket = await connectUnix(name, { type: 'stream' });
    await socket.send('from a unix stream socket');
    await socket.end();
    const chunks: Buffer[] = [];
    for await (const message of socket) chunks.push(message.data);
    assert.equal(String(Buffer.concat(chunks)), 'echo: from a unix stream socket');
    assert.equal(socket.peerCredentials().pid, process.pid);
  });

  test(`a local-socket client talks to our stream listener (${kind} name)`, async (t) => {
    const name = nameFor(t);
    await using listener = await listenUnix(name, { type: 'stream' });
    listener.on('connection', async (conn) => {
      for await (const message of conn) await conn.send(Buffer.from(String(message.data).toUpperCase()));
      await conn.end();
    });
    const conn = await connect(name, { allowHalfOpen: true });
    assert.equal(conn.peerCredentials().pid, process.pid);
    conn.end('from a local socket');
    assert.equal(String(await readAll(conn)), 'FROM A LOCAL SOCKET');
  });
}
