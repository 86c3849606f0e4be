// HTTP over a local socket: createConnection() as http's createConnection, and LocalSocketAgent
// with keep-alive pooling, against an HTTP server in another process, on a filesystem name and
// on a namespaced ('@') name; a failed connect reaches the request's 'error' handler.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { InterprocessError, LocalSocket, LocalSocketAgent, createConnection } from 'interprocess';
import { spawnFixture, testSocketPath, uniqueName } from '../helpers.js';

const windows = process.platform === 'win32';

interface Reply {
  status: number;
  body: { connection: number; path: string; pid: number };
}

function get(options: http.RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.get(options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

const names: Array<[string, (t: import('node:test').TestContext) => string]> = [
  ['a filesystem name', (t) => testSocketPath(t, 'http.sock')],
  ['a namespaced name (@)', () => `@${uniqueName('http')}`],
];

for (const [kind, makeName] of names) {
  test(`HTTP over ${kind}: http's createConnection option, then an agent that keeps the connection alive`, { timeout: 120_000 }, async (t) => {
    const name = makeName(t);
    const server = spawnFixture(t, 'http-server', [name]);
    await server.next('listening');

    // http.request({ createConnection }) with our socket, returned at once.
    let made: LocalSocket | null = null;
    const first = await get({
      path: '/one',
      createConnection: () => (made = createConnection(name)),
    });
    assert.equal(first.status, 200);
    assert.equal(first.body.path, '/one');
    assert.equal(first.body.pid, server.child.pid);
    assert.ok(made !== null && (made as LocalSocket) instanceof LocalSocket);
    assert.equal((made as LocalSocket).name?.kind, name.startsWith('@') ? 'namespaced' : 'filesystem');
    if (!windows) assert.equal((made as LocalSocket).peerCredentials().pid, server.child.pid);

    // An agent with keep-alive: three requests in turn share one connection.
    const agent = new LocalSocketAgent(name, { keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const replies: Reply[] = [];
    for (const path of ['/a', '/b', '/c']) replies.push(await get({ agent, path }));
    assert.deepEqual(replies.map((r) => r.body.path), ['/a', '/b', '/c']);
    const connections = new Set(replies.map((r) => r.body.connection));
    assert.equal(connections.size, 1, `keep-alive reused one connection: ${JSON.stringify(replies.map((r) => r.body))}`);
    assert.notEqual(replies[0]!.body.connection, first.body.connection);

    // Without keep-alive, each request has its own connection.
    const plain = new LocalSocketAgent(name);
    t.after(() => plain.destroy());
    const x = await get({ agent: plain, path: '/x' });
    const y = await get({ agent: plain, path: '/y' });
    assert.notEqual(x.body.connection, y.body.connection);

    server.send({ type: 'close' });
    await server.next('closed');
  });
}

for (const [kind, makeName] of names) {
  test(`HTTP over ${kind} with no server: the request's 'error' handler gets a typed error, the process lives on`, { timeout: 30_000 }, async (t) => {
    const name = makeName(t);
    const viaOption = await new Promise<unknown>((resolve) => {
      const request = http.get({ path: '/', createConnection: () => createConnection(name) }, () => resolve(new Error('a response from nowhere')));
      request.on('error', resolve);
    });
    assert.ok(viaOption instanceof InterprocessError, String(viaOption));
    assert.match((viaOption as InterprocessError).code, /^(ENOENT|ECONNREFUSED)$/);
    assert.match((viaOption as InterprocessError).message, /start the server first/);

    const agent = new LocalSocketAgent(name, { keepAlive: true });
    t.after(() => agent.destroy());
    const viaAgent = await new Promise<unknown>((resolve) => {
      const request = http.get({ agent, path: '/' }, () => resolve(new Error('a response from nowhere')));
      request.on('error', resolve);
    });
    assert.ok(viaAgent instanceof InterprocessError, String(viaAgent));
    assert.match((viaAgent as InterprocessError).code, /^(ENOENT|ECONNREFUSED)$/);
  });
}

test('createConnection() returns a socket at once that connects in the background; bad arguments throw TypeErrors', { timeout: 90_000 }, async (t) => {
  const name = testSocketPath(t, 'cc.sock');
  const server = spawnFixture(t, 'http-server', [name]);
  await server.next('listening');
  const socket = createConnection(name);
  assert.ok(socket instanceof LocalSocket);
  socket.write('GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'); // queued until connected
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise((resolve, reject) => socket.on('close', resolve).on('error', reject));
  assert.match(Buffer.concat(chunks).toString(), /"path":"\/early"/);
  assert.throws(() => createConnection(42 as never), TypeError);
  assert.throws(() => createConnection(name, { allowHalfOpen: 'yes' as never }), TypeError);
  server.send({ type: 'close' });
  await server.next('closed');
});
