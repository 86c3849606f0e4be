// Requests, replies, events and broadcast; many channels at once; Python as a peer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Channel, RpcChannel, connect, connectRpc, listen, nsName, pipe, serveRpc } from 'interprocess';
import { readAll, scratchDir, spawnFixture, uniqueName } from '../helpers.js';

function rpcPair<T = unknown>(options = {}): [RpcChannel<T>, RpcChannel<T>] {
  const a = pipe();
  const b = pipe();
  return [
    new RpcChannel<T>({ readable: b.receiver, writable: a.sender }, options),
    new RpcChannel<T>({ readable: a.receiver, writable: b.sender }, options),
  ];
}

test('requests get their own replies, in any order; failures carry the peer\'s code', async () => {
  const [client, server] = rpcPair<any>();
  server.handle('slow-echo', async (body: { n: number; wait: number }) => {
    await sleep(body.wait);
    return body.n;
  });
  server.handle('fail', () => {
    throw Object.assign(new Error('nope'), { code: 'E_CUSTOM' });
  });
  const replies = await Promise.all([30, 0, 15, 5].map((wait, n) => client.request('slow-echo', { n, wait })));
  assert.deepEqual(replies, [0, 1, 2, 3]);
  await assert.rejects(client.request('fail'), { code: 'E_CUSTOM', message: /nope/ });
  await assert.rejects(client.request('missing'), { code: 'ERR_INTERPROCESS_NO_HANDLER' });
  assert.equal(await client.request('slow-echo', { n: 9, wait: 0 }), 9, 'still usable after failures');
  client.destroy();
  server.destroy();
});

test('request timeouts and aborts; late replies are dropped; close fails what is pending', async () => {
  const [client, server] = rpcPair();
  server.handle('never', () => new Promise(() => {}));
  server.handle('late', async () => {
    await sleep(60);
    return 'late';
  });
  await assert.rejects(client.request('never', undefined, { timeout: 20 }), { code: 'ETIMEDOUT', message: /No reply to 'never' within 20 ms/ });
  const controller = new AbortController();
  const aborted = client.request('late', undefined, { signal: controller.signal });
  controller.abort();
  await assert.rejects(aborted, { code: 'ABORT_ERR' });
  await assert.rejects(client.request('late', undefined, { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  await sleep(80); // the late reply arrives and is ignored
  const pending = client.request('never');
  client.destroy();
  await assert.rejects(pending, { code: 'ERR_INTERPROCESS_CLOSED' });
  server.destroy();
});

test('events and plain messages go both ways', async () => {
  const [left, right] = rpcPair<any>();
  const gotRight = once(right, 'event');
  const gotLeft = once(left, 'event');
  await left.notify('ping', { from: 'left' });
  await right.notify('pong');
  assert.deepEqual(await gotRight, ['ping', { from: 'left' }]);
  assert.deepEqual(await gotLeft, ['pong', undefined]);
  const message = once(left, 'message');
  await right.send([1, 2, 3]);
  assert.deepEqual(await message, [[1, 2, 3]]);
  left.destroy();
  right.destroy();
});

test('1000 concurrent channels on one server, request/response, none lost; broadcast reaches all', { timeout: 120_000 }, async (t) => {
  const name = uniqueName();
  await using server = await serveRpc<any>(nsName(name), { backlog: 1024 });
  server.handle('echo', (body) => ({ ...body, pid: process.pid }));
  const clients = spawnFixture(t, 'rpc-clients', [name, '1000', '5']);
  const report = await clients.next<{ ok: number; failures: string[] }>('done');
  assert.deepEqual(report.failures.slice(0, 5), []);
  assert.equal(report.ok, 5000);
  assert.equal(server.channels.size, 1000);
  assert.equal(await server.broadcast('news', 'for everyone'), 1000);
  for (let events = 0; events < 1000; ) {
    await sleep(20);
    clients.send({ type: 'count-events' });
    ({ events } = await clients.next<{ events: number }>('events'));
  }
  clients.send({ type: 'exit' });
  await clients.exited;
  for (let i = 0; i < 100 && server.channels.size > 0; i++) await sleep(20);
  assert.equal(server.channels.size, 0, 'every channel closed with its client');
});

test('a client that misbehaves ends its own channel, never the server', async () => {
  const name = nsName(uniqueName());
  await using server = await serveRpc(name);
  server.handle('ok', () => 'fine');
  const rogue = await connect(name);
  rogue.on('error', () => {});
  rogue.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  await once(rogue, 'close');
  const good = await connectRpc(name);
  assert.equal(await good.request('ok'), 'fine');
  await good.close();
});

/** Runs a Python script; resolves with its stdout. */
function python(script: string, ...args: string[]): { done: Promise<string> } {
  const child = spawn('python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { done: readAll(child.stdout).then(String) };
}

test('Python multiprocessing.connection talks to our channel, both directions', {
  // Its AF_UNIX listener is Unix; on Windows it would be AF_PIPE, with a Windows Python the Wine CI lacks.
  skip: process.platform === 'win32' && 'needs a Windows Python (AF_PIPE), which the Wine CI does not have',
  timeout: 30_000,
}, async (t) => {
  const dir = scratchDir(t);
  // Python listens, we connect.
  const pyServer = path.join(dir, 'py.sock');
  const serverScript = `
import sys
from multiprocessing.connection import Listener
with Listener(sys.argv[1], 'AF_UNIX') as listener:
    print('ready', flush=True)
    with listener.accept() as conn:
        while True:
            try:
                data = conn.recv_bytes()
            except EOFError:
                break
            conn.send_bytes(data[::-1])
print('done', flush=True)
`;
  const server = python(serverScript, pyServer);
  const socket = await connect(pyServer, { wait: true, timeout: 10_000 });
  const channel = new Channel<Buffer>(socket, { codec: 'raw' });
  const messages = [Buffer.from('hello python'), Buffer.alloc(0), Buffer.alloc(100_000, 7)];
  for (const message of messages) await channel.send(message);
  const replies: Buffer[] = [];
  for await (const reply of channel) {
    replies.push(reply);
    if (replies.length === messages.length) break;
  }
  assert.deepEqual(replies.map(String), messages.map((m) => String(Buffer.from(m).reverse())));
  assert.match(await server.done, /ready\ndone/);

  // We listen, Python connects.
  const ourPath = path.join(dir, 'ours.sock');
  await using listener = await listen(ourPath);
  listener.on('connection', async (conn) => {
    const ours = new Channel<Buffer>(conn, { codec: 'raw' });
    for await (const message of ours) await ours.send(Buffer.concat([Buffer.from('node got: '), message]));
  });
  const clientScript = `
import sys
from multiprocessing.connection import Client
with Client(sys.argv[1], 'AF_UNIX') as conn:
    conn.send_bytes(b'from python')
    print(conn.recv_bytes().decode())
    conn.send_bytes(b'x' * 70000)
    print(len(conn.recv_bytes()))
`;
  assert.equal(await python(clientScript, ourPath).done, 'node got: from python\n70010\n');
});
