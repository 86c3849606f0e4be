// Listener and connection lifecycle: close, connect errors, wait/timeout/abort, iteration,
// events, `await using`, half-close. On Windows the names are pipe paths, and "gone" means no pipe
// of that name (connecting fails with ENOENT) rather than no socket file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { InterprocessError, connect, listen, nsName } from 'interprocess';
import { readAll, request, spawnFixture, testSocketPath, uniqueName } from '../helpers.js';

const windows = process.platform === 'win32';

/** Something listens on the name: its socket file is there (Unix), a client gets in (Windows). */
async function assertListening(socketPath: string): Promise<void> {
  if (windows) (await connect(socketPath)).destroy();
  else assert.ok(fs.lstatSync(socketPath).isSocket(), 'the socket file is there');
}

/** The name is free: no socket file and no lock file (Unix), no pipe of that name (Windows). */
async function assertGone(socketPath: string): Promise<void> {
  if (windows) {
    await assert.rejects(connect(socketPath), { code: 'ENOENT' });
    return;
  }
  assert.equal(fs.existsSync(socketPath), false, 'socket file removed');
  assert.equal(fs.existsSync(`${socketPath}.lock`), false, 'lock file removed');
}

test('after close(), connecting fails with ENOENT or ECONNREFUSED and the socket file is gone', async (t) => {
  const socketPath = testSocketPath(t, 'closing.sock');
  const listener = await listen(socketPath);
  await assertListening(socketPath);
  const conn = await connect(socketPath);
  conn.destroy();
  await listener.close();
  assert.equal(listener.listening, false);
  await assertGone(socketPath);
  await assert.rejects(connect(socketPath), (e: InterprocessError) => {
    assert.ok(e instanceof InterprocessError);
    assert.ok((windows ? ['ENOENT'] : ['ENOENT', 'ECONNREFUSED']).includes(e.code), e.code);
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

test('a closed listener whose connection stays open: that connection works, new clients fail', { timeout: 30_000 }, async (t) => {
  const socketPath = testSocketPath(t, 'lingering.sock');
  const listener = await listen(socketPath);
  const accepted = once(listener, 'connection');
  const client = await connect(socketPath);
  const [server] = (await accepted) as [import('interprocess').LocalSocket];
  server.pipe(server);
  await listener.close();
  // Unix: the socket file is gone. Windows: the open connection keeps the pipe's name, with no
  // instance free: after a bounded wait for one, EAGAIN (what a full backlog gives on Unix).
  const started = Date.now();
  await assert.rejects(connect(socketPath), (e: InterprocessError) => {
    assert.equal(e.code, windows ? 'EAGAIN' : 'ENOENT');
    assert.match(e.message, windows ? /stayed busy.*wait: true/ : /start the server first/);
    return true;
  });
  if (windows) assert.ok(Date.now() - started >= 1900, `gave up after ${Date.now() - started} ms`);
  assert.equal(String(await request(client, 'still here', 10)), 'still here');
  await once(server, 'close');
  await assertGone(socketPath);
});

test('connecting with no server fails with ENOENT or ECONNREFUSED', async (t) => {
  await assert.rejects(connect(testSocketPath(t, 'nobody.sock')), { code: 'ENOENT' });
  // An unbound abstract name is refused; a pipe name that no server has is not found.
  await assert.rejects(connect(nsName(uniqueName())), { code: windows ? 'ENOENT' : 'ECONNREFUSED' });
});

test('wait: connect succeeds against a listener started 300 ms later in another process', { timeout: 30_000 }, async (t) => {
  const socketPath = testSocketPath(t, 'late.sock');
  const started = Date.now();
  const connecting = connect(socketPath, { wait: true, timeout: 20_000 });
  await sleep(300);
  const server = spawnFixture(t, 'echo-server', ['fs', socketPath]);
  const conn = await connecting;
  assert.ok(Date.now() - started >= 300);
  assert.equal(String(await request(conn, 'ping', 4)), 'ping');
  await server.next('listening');
});

test('wait with a 50 ms timeout against no listener fails with ETIMEDOUT', async (t) => {
  const started = Date.now();
  await assert.rejects(connect(testSocketPath(t, 'never.sock'), { wait: true, timeout: 50 }), (e: InterprocessError) => {
    assert.equal(e.code, 'ETIMEDOUT');
    assert.match(e.message, /timed out after 50 ms/);
    return true;
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 45 && elapsed < 1000, `gave up after ${elapsed} ms`);
});

test('an aborted signal fails with ABORT_ERR, before and during the wait', async (t) => {
  const socketPath = testSocketPath(t, 'aborted.sock');
  await assert.rejects(connect(socketPath, { signal: AbortSignal.abort() }), { code: 'ABORT_ERR', name: 'AbortError' });
  const controller = new AbortController();
  const connecting = connect(socketPath, { wait: true, signal: controller.signal });
  setTimeout(() => controller.abort(), 30);
  await assert.rejects(connecting, { code: 'ABORT_ERR' });
  await assert.rejects(listen(socketPath, { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  await assertGone(socketPath);
});

test('a listener closes when its signal aborts', async (t) => {
  const socketPath = testSocketPath(t, 'signal.sock');
  const controller = new AbortController();
  const listener = await listen(socketPath, { signal: controller.signal });
  controller.abort();
  await once(listener, 'close');
  await assertGone(socketPath);
});

test("'connection' events take precedence; otherwise connections queue for iteration", async (t) => {
  const socketPath = testSocketPath(t, 'events.sock');
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
  const socketPath = testSocketPath(t, 'break.sock');
  const listener = await listen(socketPath);
  const client = await connect(socketPath);
  for await (const conn of listener) {
    conn.destroy();
    break;
  }
  assert.equal(listener.listening, false);
  await assertGone(socketPath); // leaving the loop waited for close()
  client.destroy();
});

test('await using closes the listener at the end of the scope', async (t) => {
  const socketPath = testSocketPath(t, 'using.sock');
  {
    await using listener = await listen(socketPath);
    assert.ok(listener.listening);
    await assertListening(socketPath);
  }
  await assertGone(socketPath);
});

const noHalfClose =
  windows &&
  'a Windows named pipe has no half-close: after end(), libuv waits 50 ms for data and then closes the pipe (its EOF timer), so a later reply is lost; the test below exchanges without it';

test('half-close: the client ends its side and still reads the reply', { skip: noHalfClose }, async (t) => {
  const socketPath = testSocketPath(t, 'half.sock');
  await using listener = await listen(socketPath, { allowHalfOpen: true });
  listener.on('connection', async (conn) => {
    const request = await readAll(conn); // to the client's end()
    conn.end(`got ${request.length} bytes`);
  });
  const client = await connect(socketPath, { allowHalfOpen: true });
  client.end(Buffer.alloc(100_000, 1));
  assert.equal(String(await readAll(client)), 'got 100000 bytes');
});

test('without half-close: the client sends 100 000 bytes and reads the reply, then both end', async (t) => {
  const socketPath = testSocketPath(t, 'exchange.sock');
  await using listener = await listen(socketPath);
  const served = new Promise<void>((resolve, reject) => {
    listener.on('connection', (conn) => {
      let received = 0;
      conn.on('data', (chunk: Buffer) => {
        for (const byte of chunk) if (byte !== 1) reject(new Error(`byte ${received} is ${byte}`));
        received += chunk.length;
        if (received === 100_000) conn.write(`got ${received} bytes`);
      });
      conn.on('end', () => conn.end()).on('close', () => resolve()).on('error', reject);
    });
  });
  const client = await connect(socketPath);
  const reply = await request(client, Buffer.alloc(100_000, 1), 'got 100000 bytes'.length);
  assert.equal(String(reply), 'got 100000 bytes');
  await served; // the server saw the client's end and closed
});

test('Windows: after end(), what the peer sends after a pause is lost and its write fails with EPIPE', { skip: !windows && 'Unix sockets have half-close (tested above)' }, async (t) => {
  const socketPath = testSocketPath(t, 'ended.sock');
  await using listener = await listen(socketPath, { allowHalfOpen: true });
  const received = new Promise<number>((resolve) => {
    listener.on('connection', (conn) => {
      let bytes = 0;
      conn.on('data', (chunk: Buffer) => (bytes += chunk.length)).on('error', () => {});
      conn.on('close', () => resolve(bytes));
      conn.end(); // nothing to send: libuv reads on until 50 ms pass with no data, then closes
    });
  });
  const client = await connect(socketPath, { allowHalfOpen: true });
  client.on('error', () => {});
  client.write(Buffer.alloc(1000, 1));
  await sleep(300);
  const late = await new Promise<Error | null | undefined>((resolve) => client.write(Buffer.alloc(1000, 2), resolve));
  assert.equal((late as NodeJS.ErrnoException | null)?.code, 'EPIPE');
  assert.equal(await received, 1000, 'the server got the first write only');
  client.destroy();
});

test('backpressure: write() reports a full buffer and drain follows', async (t) => {
  const socketPath = testSocketPath(t, 'pressure.sock');
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

test('a client that connects while listen() is still finishing is not lost', { timeout: 60_000 }, async (t) => {
  // A socket file is reachable as soon as it is linked into place, while listen() still tidies up:
  // a connection made then must reach the listener like any other.
  for (let round = 0; round < 20; round++) {
    const socketPath = testSocketPath(t, 'early.sock');
    let connected: net.Socket | null = null;
    let stop = false;
    const hammer = () => {
      if (stop) return;
      const socket = net.connect(socketPath);
      socket.once('connect', () => {
        connected = socket;
        stop = true;
      });
      socket.once('error', () => setImmediate(hammer));
    };
    setImmediate(hammer);
    const listener = await listen(socketPath);
    const accepted = once(listener, 'connection');
    const outcome = await Promise.race([accepted.then(() => 'accepted'), sleep(5000).then(() => 'lost')]);
    stop = true;
    assert.equal(outcome, 'accepted', `round ${round}: the connection made during listen() reached the listener`);
    ((await accepted)[0] as net.Socket).destroy();
    (connected as net.Socket | null)?.destroy();
    await listener.close();
  }
});

test('a socket file in a directory that does not exist: ENOENT saying to create the directory, not blaming permissions', { skip: windows && 'Windows pipe names have no directory' }, async (t) => {
  const missing = `${testSocketPath(t, 'missing-dir')}/nested/app.sock`;
  await assert.rejects(listen(missing), (error: InterprocessError) => {
    assert.equal(error.code, 'ENOENT');
    assert.match(error.message, /does not exist: create it first/);
    assert.doesNotMatch(error.message, /writable/);
    return true;
  });
});

test('backlog: an abstract name listens with the backlog asked for (Node re-listens an fd with 511 unless told)', { skip: process.platform !== 'linux' && 'abstract names are Linux-only' }, async () => {
  const raw = uniqueName('backlog');
  const listener = await listen(nsName(raw), { backlog: 1024 });
  try {
    // ss(8) shows a listening socket's backlog in its Send-Q column.
    const line = execFileSync('ss', ['-xl'], { encoding: 'utf8' }).split('\n').find((l) => l.includes(`@${raw} `));
    assert.ok(line, `ss lists @${raw}`);
    assert.equal(line.trim().split(/\s+/)[3], '1024', line);
  } finally {
    await listener.close();
  }
});
