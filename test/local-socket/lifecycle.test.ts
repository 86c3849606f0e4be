// Listener and connection lifecycle: close, connect errors, wait/timeout/abort, iteration,
// events, `await using`, half-close.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { InterprocessError, connect, listen, nsName } from 'interprocess';
import { readAll, scratchDir, spawnFixture, uniqueName } from '../helpers.js';

test('after close(), connecting fails with ENOENT or ECONNREFUSED and the socket file is gone', async (t) => {
  const socketPath = path.join(scratchDir(t), 'closing.sock');
  const listener = await listen(socketPath);
  assert.ok(fs.lstatSync(socketPath).isSocket());
  const conn = await connect(socketPath);
  conn.destroy();
  await listener.close();
  assert.equal(listener.listening, false);
  assert.equal(fs.existsSync(socketPath), false, 'socket file removed');
  assert.equal(fs.existsSync(`${socketPath}.lock`), false, 'lock file removed');
  await assert.rejects(connect(socketPath), (e: InterprocessError) => {
    assert.ok(e instanceof InterprocessError);
    assert.ok(['ENOENT', 'ECONNREFUSED'].includes(e.code), e.code);
    assert.match(e.message, /start the server first/);
    return true;
  });
  await listener.close(); // idempotent
});

test('after a server in another process closes, connecting fails the same way', async (t) => {
  const name = uniqueName();
  const server = spawnFixture(t, 'echo-server', ['ns', name]);
  await server.next('listening');
  (await connect(nsName(name))).destroy();
  server.send({ type: 'close' });
  await server.next('closed');
  await assert.rejects(connect(nsName(name)), (e: InterprocessError) => ['ENOENT', 'ECONNREFUSED'].includes(e.code));
});

test('connecting with no server fails with ENOENT or ECONNREFUSED', async (t) => {
  const dir = scratchDir(t);
  await assert.rejects(connect(path.join(dir, 'nobody.sock')), { code: 'ENOENT' });
  await assert.rejects(connect(nsName(uniqueName())), { code: 'ECONNREFUSED' });
});

test('wait: connect succeeds against a listener started 300 ms later in another process', { timeout: 30_000 }, async (t) => {
  const socketPath = path.join(scratchDir(t), 'late.sock');
  const started = Date.now();
  const connecting = connect(socketPath, { wait: true, timeout: 20_000 });
  await sleep(300);
  const server = spawnFixture(t, 'echo-server', ['fs', socketPath]);
  const conn = await connecting;
  assert.ok(Date.now() - started >= 300);
  conn.end('ping');
  assert.equal(String(await readAll(conn)), 'ping');
  await server.next('listening');
});

test('wait with a 50 ms timeout against no listener fails with ETIMEDOUT', async (t) => {
  const started = Date.now();
  await assert.rejects(connect(path.join(scratchDir(t), 'never.sock'), { wait: true, timeout: 50 }), (e: InterprocessError) => {
    assert.equal(e.code, 'ETIMEDOUT');
    assert.match(e.message, /timed out after 50 ms/);
    return true;
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 45 && elapsed < 1000, `gave up after ${elapsed} ms`);
});

test('an aborted signal fails with ABORT_ERR, before and during the wait', async (t) => {
  const socketPath = path.join(scratchDir(t), 'aborted.sock');
  await assert.rejects(connect(socketPath, { signal: AbortSignal.abort() }), { code: 'ABORT_ERR', name: 'AbortError' });
  const controller = new AbortController();
  const connecting = connect(socketPath, { wait: true, signal: controller.signal });
  setTimeout(() => controller.abort(), 30);
  await assert.rejects(connecting, { code: 'ABORT_ERR' });
  await assert.rejects(listen(socketPath, { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  assert.equal(fs.existsSync(socketPath), false);
});

test('a listener closes when its signal aborts', async (t) => {
  const socketPath = path.join(scratchDir(t), 'signal.sock');
  const controller = new AbortController();
  const listener = await listen(socketPath, { signal: controller.signal });
  controller.abort();
  await once(listener, 'close');
  assert.equal(fs.existsSync(socketPath), false);
});

test("'connection' events take precedence; otherwise connections queue for iteration", async (t) => {
  const socketPath = path.join(scratchDir(t), 'events.sock');
  const listener = await listen(socketPath);
  // Nobody iterating yet: connections made now wait in the queue, none is lost.
  const early = await Promise.all([connect(socketPath), connect(socketPath)]);
  await sleep(20);
  const iterator = listener[Symbol.asyncIterator]();
  const first = await iterator.next();
  const second = await iterator.next();
  assert.equal(first.done, false);
  assert.equal(second.done, false);
  const seen: unknown[] = [];
  listener.on('connection', (conn) => {
    seen.push(conn);
    conn.end();
  });
  const late = await connect(socketPath);
  await once(late, 'end');
  assert.equal(seen.length, 1);
  for (const c of [...early, late, first.value, second.value]) c.destroy();
  await listener.close();
  assert.deepEqual(await iterator.next(), { value: undefined, done: true });
});

test('breaking out of for-await closes the listener', async (t) => {
  const socketPath = path.join(scratchDir(t), 'break.sock');
  const listener = await listen(socketPath);
  const client = await connect(socketPath);
  for await (const conn of listener) {
    conn.destroy();
    break;
  }
  assert.equal(listener.listening, false);
  assert.equal(fs.existsSync(socketPath), false);
  client.destroy();
});

test('await using closes the listener at the end of the scope', async (t) => {
  const socketPath = path.join(scratchDir(t), 'using.sock');
  {
    await using listener = await listen(socketPath);
    assert.ok(listener.listening);
    assert.ok(fs.existsSync(socketPath));
  }
  assert.equal(fs.existsSync(socketPath), false);
});

test('half-close: the client ends its side and still reads the reply', async (t) => {
  const socketPath = path.join(scratchDir(t), 'half.sock');
  await using listener = await listen(socketPath, { allowHalfOpen: true });
  listener.on('connection', async (conn) => {
    const request = await readAll(conn); // to the client's end()
    conn.end(`got ${request.length} bytes`);
  });
  const client = await connect(socketPath, { allowHalfOpen: true });
  client.end(Buffer.alloc(100_000, 1));
  assert.equal(String(await readAll(client)), 'got 100000 bytes');
});

test('backpressure: write() reports a full buffer and drain follows', async (t) => {
  const socketPath = path.join(scratchDir(t), 'pressure.sock');
  await using listener = await listen(socketPath);
  const accepted = once(listener, 'connection');
  const client = await connect(socketPath);
  const [server] = (await accepted) as [import('interprocess').LocalSocket];
  server.pause(); // a reader that does not read
  const chunk = Buffer.alloc(64 * 1024);
  let writes = 0;
  while (client.write(chunk)) writes++;
  assert.ok(writes < 1000, `write() returned false after ${writes} writes, with the peer not reading`);
  const drained = once(client, 'drain');
  server.resume();
  await drained;
  client.destroy();
  server.destroy();
});
