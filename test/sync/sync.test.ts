// The blocking local-socket client (connectSync) and the blocking RPC call (requestRpcSync),
// across real processes: against listen() and serveRpc() servers in other processes, sync clients
// in child processes against servers here, hostile peers (silent, flooding, closing mid-read),
// stale names, waiting for a server that comes later, and worker threads. No descriptor leaks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { InterprocessError, SyncLocalSocket, connect, connectSync, listen, requestRpcSync, serveRpc } from 'interprocess';
import { notOnWindows, openFds, python, spawnFixture, testSocketPath, uniqueName, wine } from '../helpers.js';

const windows = process.platform === 'win32';
/** Under Wine every process start and pipe call is several times slower: the tests' bounds grow with it. */
const slow = wine ? 4 : 1;
const NOBODY = 65534;
const needsRootOnLinux = (process.platform !== 'linux' || process.getuid?.() !== 0) && 'runs the server as another user (nobody), which needs root, and its abstract name (Linux)';

/** A name for each kind: a filesystem name (a socket file; a pipe path on Windows) and a namespaced one. */
function names(t: import('node:test').TestContext): Array<[string, string]> {
  return [
    ['filesystem', testSocketPath(t, 'sync.sock')],
    ['namespaced', `@${uniqueName('sync')}`],
  ];
}

function codeOf(fn: () => unknown): { code?: string; error: InterprocessError } {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InterprocessError, `an InterprocessError: ${String(error)}`);
    return { code: (error as InterprocessError).code, error: error as InterprocessError };
  }
  assert.fail('it did not throw');
}

async function echoServer(t: import('node:test').TestContext, raw: string) {
  const kind = raw.startsWith('@') ? 'ns' : 'fs';
  const server = spawnFixture(t, 'echo-server', [kind, kind === 'ns' ? raw.slice(1) : raw]);
  return { server, listening: await server.next<{ pid: number }>('listening') };
}

test('connectSync reaches listen() in another process by each kind of name: write, read, readExact, readUntil', { timeout: 60_000 * slow }, async (t) => {
  for (const [kind, raw] of names(t)) {
    const { listening } = await echoServer(t, raw);
    const before = openFds();
    const socket = connectSync(raw, { timeout: 10_000 });
    assert.ok(socket instanceof SyncLocalSocket);
    assert.equal(socket.name.kind, kind);
    assert.equal(socket.closed, false);
    assert.equal(socket.peerCredentials().pid, listening.pid, 'the peer is the server process');
    socket.write('first line\nsecond');
    assert.equal(socket.readUntil('\n', { timeout: 10_000 }).toString(), 'first line\n');
    assert.equal(socket.readExact(6, { timeout: 10_000 }).toString(), 'second');
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'ab');
    // The echo comes back while we still write: the server's and the kernel's buffers take it.
    socket.write(big.subarray(0, 64 * 1024));
    assert.ok(socket.readExact(64 * 1024, { timeout: 10_000 }).equals(big.subarray(0, 64 * 1024)));
    socket.write(Uint8Array.of(1, 2, 3));
    const got: Buffer[] = [];
    let length = 0;
    while (length < 3) {
      const chunk = socket.read(2, { timeout: 10_000 })!;
      assert.ok(chunk.length >= 1 && chunk.length <= 2);
      got.push(chunk);
      length += chunk.length;
    }
    assert.deepEqual([...Buffer.concat(got)], [1, 2, 3]);
    socket.close();
    assert.equal(socket.closed, true);
    socket.close(); // a second close does nothing
    assert.equal(openFds(), before, `${kind}: no descriptor left open`);
  }
});

test('after close() every call fails with ERR_INTERPROCESS_CLOSED; using closes at the end of the scope', { timeout: 30_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-closed')}`;
  await echoServer(t, raw);
  const before = openFds();
  let kept: SyncLocalSocket;
  {
    using socket = connectSync(raw);
    kept = socket;
    assert.ok(socket.peerCredentials().pid! > 0);
  }
  assert.equal(kept.closed, true);
  assert.equal(openFds(), before);
  for (const call of [() => kept.write('x'), () => kept.read(), () => kept.readExact(1), () => kept.readUntil('\n')]) {
    assert.equal(codeOf(call).code, 'ERR_INTERPROCESS_CLOSED');
  }
  assert.ok(kept.peerCredentials().pid! > 0, 'credentials read before close still answer');
});

test('a sync client in a child process reaches listen() and serveRpc() in this one', { timeout: 60_000 * slow }, async (t) => {
  for (const [, raw] of names(t)) {
    await using listener = await listen(raw);
    listener.on('connection', (conn) => conn.pipe(conn));
    const client = spawnFixture(t, 'sync-client', [JSON.stringify({ op: 'echo', name: raw, message: 'héllo from a child' })]);
    const result = await client.next<{ value: string; pid: number }>('result');
    assert.equal(result.value, 'héllo from a child');
    assert.equal(result.pid, process.pid);
  }
  const rpcName = `@${uniqueName('sync-rpc-here')}`;
  await using server = await serveRpc(rpcName);
  server.handle('add', ([a, b]: [number, number]) => a + b);
  const client = spawnFixture(t, 'sync-client', [JSON.stringify({ op: 'rpc', name: rpcName, method: 'add', body: [20, 22] })]);
  assert.equal((await client.next<{ value: number }>('result')).value, 42);
});

test('a sync client in a child reaches the other async listeners: listenUnix() stream (Unix), listenNamedPipe() byte type (Windows)', { timeout: 60_000 * slow }, async (t) => {
  const { listenUnix, listenNamedPipe } = await import('interprocess');
  const raw = windows ? testSocketPath(t, 'np') : `@${uniqueName('sync-unix')}`;
  if (windows) {
    const listener = await listenNamedPipe(raw);
    t.after(() => listener.close());
    listener.on('connection', (conn) => conn.pipe(conn));
  } else {
    const listener = await listenUnix(raw, { type: 'stream' });
    t.after(() => listener.close());
    listener.on('connection', (conn) => {
      conn.on('message', (message) => void conn.send(message.data));
    });
  }
  const client = spawnFixture(t, 'sync-client', [JSON.stringify({ op: 'echo', name: raw, message: 'through the other listener' })]);
  const result = await client.next<{ value: string; pid: number }>('result');
  assert.equal(result.value, 'through the other listener');
  assert.equal(result.pid, process.pid);
});

test('a failed connect gives the codes connect() gives, and leaks nothing', { timeout: 30_000 * slow }, async (t) => {
  const raws = [testSocketPath(t, 'nobody.sock'), `@${uniqueName('nobody')}`];
  const asyncCodes: Array<string | undefined> = [];
  for (const raw of raws) {
    asyncCodes.push(
      await connect(raw).then(
        (socket) => {
          socket.destroy();
          return 'connected';
        },
        (error: InterprocessError) => error.code,
      ),
    );
  }
  const before = openFds();
  for (const [i, raw] of raws.entries()) {
    const asyncCode = asyncCodes[i];
    const { code, error } = codeOf(() => connectSync(raw));
    assert.equal(code, asyncCode, `${raw}: ${error.message}`);
    assert.match(error.message, /Nothing is listening there/);
  }
  const { code, error } = codeOf(() => connectSync(`@${uniqueName('nobody')}`, { wait: true, timeout: 300 }));
  assert.equal(code, 'ETIMEDOUT');
  assert.match(error.message, /connectSync\(\) to .* timed out after 300 ms/);
  assert.equal(openFds(), before);
});

test('a stale socket file (its server gone) is ECONNREFUSED, as connect() says', { skip: notOnWindows.socketFile, timeout: 30_000 * slow }, async (t) => {
  const socketPath = testSocketPath(t, 'stale.sock');
  // Python binds the file and exits without removing it: a socket file nothing listens on.
  await python(t, 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)', [socketPath]).output;
  const asyncCode = await connect(socketPath).then(
    () => 'connected',
    (error: InterprocessError) => error.code,
  );
  assert.equal(asyncCode, 'ECONNREFUSED');
  assert.equal(codeOf(() => connectSync(socketPath)).code, 'ECONNREFUSED');
});

test('wait: true connects once the server appears later', { timeout: 60_000 * slow }, async (t) => {
  for (const [, raw] of names(t)) {
    // The client (in a child) starts first and waits; the server comes 300 ms later.
    const client = spawnFixture(t, 'sync-client', [JSON.stringify({ op: 'echo', name: raw, message: 'late', wait: true, timeout: 30_000 })]);
    await sleep(300);
    await using listener = await listen(raw);
    listener.on('connection', (conn) => conn.pipe(conn));
    assert.equal((await client.next<{ value: string }>('result')).value, 'late');
  }
  // And here: blocked in connectSync while a server starts in another process.
  const raw = `@${uniqueName('sync-late')}`;
  const server = spawnFixture(t, 'echo-server', ['ns', raw.slice(1)]);
  using socket = connectSync(raw, { wait: true, timeout: 30_000 });
  socket.write('ping');
  assert.equal(socket.readExact(4, { timeout: 10_000 }).toString(), 'ping');
  await server.next('listening');
});

test('timeouts: a silent server, a partial readExact, a slow write; each says which call and how long, and leaks nothing', { timeout: 60_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-silent')}`;
  const peer = spawnFixture(t, 'sync-peer', [raw, 'silent']);
  await peer.next('listening');
  const before = openFds();
  const socket = connectSync(raw, { timeout: 10_000 });
  const started = Date.now();
  const { code, error } = codeOf(() => socket.read(10, { timeout: 250 }));
  assert.equal(code, 'ETIMEDOUT');
  assert.match(error.message, /^read\(\) timed out after 250 ms/);
  assert.ok(Date.now() - started >= 240, 'it waited the timeout');
  assert.match(codeOf(() => socket.readExact(4, { timeout: 100 })).error.message, /^readExact\(\) timed out after 100 ms with 0 of 4 bytes/);
  assert.match(codeOf(() => socket.readUntil('\n', { timeout: 0 })).error.message, /^readUntil\(\) timed out after 0 ms/);
  // The silent peer reads nothing: a write larger than every buffer on the way times out, saying how much went.
  const huge = Buffer.alloc(64 * 1024 * 1024);
  const w = codeOf(() => socket.write(huge, { timeout: 300 }));
  assert.equal(w.code, 'ETIMEDOUT');
  assert.ok(w.error.bytesWritten! > 0 && w.error.bytesWritten! < huge.length, `bytesWritten ${w.error.bytesWritten}`);
  socket.close();
  assert.equal(openFds(), before);
});

test("a peer that trickles (a byte sent and a chunk read every 20 ms): readExact, readUntil and write end at the whole call's timeout, not a read's or a wait's", { timeout: 60_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-trickle')}`;
  const peer = spawnFixture(t, 'sync-peer', [raw, 'trickle']);
  await peer.next('listening');
  const before = openFds();
  const calls: Array<[string, (socket: SyncLocalSocket) => unknown]> = [
    ['readExact', (socket) => socket.readExact(1024 * 1024, { timeout: 300 })],
    ['readUntil', (socket) => socket.readUntil('\n', { timeout: 300 })],
    ['write', (socket) => socket.write(Buffer.alloc(64 * 1024 * 1024), { timeout: 300 })],
  ];
  for (const [call, run] of calls) {
    // A connection of its own each: the peer trickles for 10 s from the connection. A timeout
    // counted per read (or per wait) would be met by every byte and end only when the trickle stops.
    const socket = connectSync(raw, { timeout: 10_000 });
    const started = performance.now();
    const { code, error } = codeOf(() => run(socket));
    const elapsed = performance.now() - started;
    assert.equal(code, 'ETIMEDOUT', `${call}: ${error.message}`);
    assert.ok(elapsed >= 290, `${call} waited its timeout (${elapsed} ms)`);
    assert.ok(elapsed < 2500 * slow, `${call} ended at its 300 ms timeout, not when the peer stopped trickling 10 s in (${elapsed} ms)`);
    if (call === 'write') assert.ok(error.bytesWritten! > 0, 'the peer read some of it meanwhile');
    else assert.ok(socket.readableLength > 1, `bytes trickled in meanwhile (${socket.readableLength}), kept for the next read`);
    socket.close();
  }
  assert.equal(openFds(), before);
});

test('another user: connectSync reaches a listener run as nobody as connect() does, and sees who it is; as nobody, it is refused by ours as connect() is', { skip: needsRootOnLinux, timeout: 30_000 * slow }, async (t) => {
  const name = uniqueName('sync-nobody');
  const server = spawnFixture(t, 'echo-server', ['ns', name], process.env, { uid: NOBODY, gid: NOBODY });
  const listening = await server.next<{ pid: number; uid: number }>('listening');
  assert.equal(listening.uid, NOBODY);
  const echoed = await connect(`@${name}`).then(async (socket) => {
    socket.end('ping');
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString();
  });
  assert.equal(echoed, 'ping', 'connect() reaches it');
  const before = openFds();
  const socket = connectSync(`@${name}`, { timeout: 10_000 });
  assert.deepEqual(socket.peerCredentials(), { pid: listening.pid, uid: NOBODY, gid: NOBODY });
  socket.write('ping', { timeout: 10_000 });
  assert.equal(socket.readExact(4, { timeout: 10_000 }).toString(), echoed, 'connectSync reaches it alike');
  socket.close();
  assert.equal(openFds(), before);
  // The other way: a sync client run as nobody, against our listener (its own user only, by
  // default): connected, then closed unread, as connect() is (test/security/access.test.ts).
  const ours = `@${uniqueName('sync-ours')}`;
  await using listener = await listen(ours);
  let handled = 0;
  listener.on('connection', (conn) => {
    handled++;
    conn.pipe(conn);
  });
  const client = spawnFixture(t, 'sync-client', [JSON.stringify({ op: 'echo', name: ours, message: 'let me in' })], process.env, { uid: NOBODY, gid: NOBODY });
  const refused = await client.next<{ code?: string; data?: string }>('error');
  // Closed unread: its write lands first (ECONNRESET at the read), or after (EPIPE), or not at all (the end).
  assert.ok(['ECONNRESET', 'EPIPE', 'ERR_INTERPROCESS_TRUNCATED'].includes(refused.code!), `refused: ${refused.code}`);
  assert.ok(!refused.data, 'the refused client got nothing back');
  assert.deepEqual([handled, listener.refused], [0, 1]);
});

test('EMFILE at connectSync and requestRpcSync: typed, not retried by wait, and no descriptor leaked', { skip: process.platform !== 'linux' && 'the child\'s descriptor limit is set with prlimit (util-linux) and counted in /proc/self/fd: Linux only', timeout: 30_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-emfile')}`;
  await using listener = await listen(raw);
  listener.on('connection', (conn) => conn.end());
  // The client runs under a limit of 64 descriptors, and fills them before it connects.
  const client = spawnFixture(t, 'sync-client', [JSON.stringify({ op: 'emfile', name: raw })], process.env, { execPath: 'prlimit', execArgv: ['--nofile=64:64', process.execPath] });
  const { value } = await client.next<{ value: { filled: number; attempts: Array<{ code?: string; typed: boolean; elapsed: number }>; left: number } }>('result');
  assert.ok(value.filled > 0, 'the table was filled');
  for (const [i, attempt] of value.attempts.entries()) {
    assert.deepEqual([attempt.code, attempt.typed], ['EMFILE', true], `call ${i}: a typed EMFILE`);
    assert.ok(attempt.elapsed < 5000, `call ${i}: failed at once, not retried until its 10 s timeout (${attempt.elapsed} ms)`);
  }
  assert.equal(value.left, 0, 'no descriptor left open by the failed calls');
});

test('signals during a blocking call neither end it early nor stretch its timeout (EINTR)', { skip: windows && 'no signals to interrupt a wait on Windows', timeout: 30_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-eintr')}`;
  const peer = spawnFixture(t, 'sync-peer', [raw, 'silent']);
  await peer.next('listening');
  const client = spawnFixture(t, 'sync-client', [JSON.stringify({ op: 'signalled', name: raw, timeout: 1500 })]);
  await client.next('waiting');
  // The child blocks in read() for 1.5 s; a signal every 20 ms interrupts its poll(2) each time.
  const signals = setInterval(() => client.child.kill('SIGUSR2'), 20);
  const result = await client.next<{ value: string; elapsed: number }>('result').finally(() => clearInterval(signals));
  assert.equal(result.value, 'ETIMEDOUT', 'the read timed out, it did not fail with EINTR');
  assert.ok(result.elapsed >= 1450, `it waited its whole timeout (${result.elapsed} ms)`);
  assert.ok(result.elapsed < 4500, `the signals did not restart the timeout (${result.elapsed} ms)`);
});

test('bytes read before a timeout are kept for the next read', { timeout: 30_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-keep')}`;
  await echoServer(t, raw);
  using socket = connectSync(raw);
  socket.write('abc');
  // Wait for the echo to be here, then ask for more than came.
  assert.equal(socket.readExact(1, { timeout: 10_000 }).toString(), 'a');
  const deadline = Date.now() + 10_000;
  while (socket.readableLength < 2 && Date.now() < deadline) {
    try {
      socket.readExact(3, { timeout: 50 });
    } catch (error) {
      assert.equal((error as InterprocessError).code, 'ETIMEDOUT');
    }
  }
  assert.equal(codeOf(() => socket.readExact(3, { timeout: 100 })).code, 'ETIMEDOUT');
  assert.equal(socket.readableLength, 2);
  assert.equal(codeOf(() => socket.readUntil('\n', { timeout: 100 })).code, 'ETIMEDOUT');
  assert.equal(socket.read(100, { timeout: 1000 })!.toString(), 'bc', 'nothing was lost');
});

test('the server closing in the middle of readExact/readUntil: ERR_INTERPROCESS_TRUNCATED with the bytes that came', { timeout: 30_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-partial')}`;
  const peer = spawnFixture(t, 'sync-peer', [raw, 'partial']);
  await peer.next('listening');
  const before = openFds();
  {
    using socket = connectSync(raw);
    const { code, error } = codeOf(() => socket.readExact(10, { timeout: 10_000 }));
    assert.equal(code, 'ERR_INTERPROCESS_TRUNCATED');
    assert.equal(error.data!.toString(), 'abc');
    assert.match(error.message, /after 3 of 10 bytes/);
    assert.equal(socket.read(), null, 'then the end of the stream');
  }
  {
    using socket = connectSync(raw);
    const { code, error } = codeOf(() => socket.readUntil('\n', { timeout: 10_000 }));
    assert.equal(code, 'ERR_INTERPROCESS_TRUNCATED');
    assert.equal(error.data!.toString(), 'abc');
  }
  {
    using socket = connectSync(raw);
    assert.equal(socket.readExact(3, { timeout: 10_000 }).toString(), 'abc');
    assert.equal(socket.read(10, { timeout: 10_000 }), null);
  }
  assert.equal(openFds(), before);
});

test('the server process killed while a client blocks in read(): the read ends (null), it does not hang', { timeout: 30_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-killed')}`;
  const { server } = await echoServer(t, raw);
  const client = spawnFixture(t, 'sync-client', [JSON.stringify({ op: 'hold', name: raw })]);
  await client.next('connected');
  await sleep(100); // the client is in read() by now
  server.child.kill('SIGKILL');
  assert.equal((await client.next<{ value: string }>('result')).value, 'end');
});

test('readUntil without the delimiter is bounded by maxBytes, and the bytes stay for read()', { timeout: 30_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-flood')}`;
  const peer = spawnFixture(t, 'sync-peer', [raw, 'flood']);
  await peer.next('listening');
  using socket = connectSync(raw);
  const { code, error } = codeOf(() => socket.readUntil('\n', { maxBytes: 65_536, timeout: 10_000 }));
  assert.equal(code, 'ERR_INTERPROCESS_MESSAGE_TOO_LARGE');
  assert.match(error.message, /65536 bytes \(options.maxBytes\)/);
  assert.ok(socket.readableLength >= 65_536 && socket.readableLength < 65_536 + 128 * 1024, `read ahead: ${socket.readableLength}`);
  let total = 0;
  while (total < 1024 * 1024) total += socket.read(1 << 20, { timeout: 10_000 })!.length;
  assert.equal(total, 1024 * 1024, 'every byte of the flood arrives, none lost');
});

test('bad arguments are typed errors, before any syscall', () => {
  const before = openFds();
  assert.throws(() => connectSync(42 as never), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => connectSync('@x', { timeout: -1 }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => connectSync('@x', { wait: 'yes' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => requestRpcSync('@x', 7 as never), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => requestRpcSync('@x', 'm', undefined, { timeout: Number.NaN }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => requestRpcSync('@x', 'm', undefined, { authTimeout: 5 }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => requestRpcSync('@x', 'm', 10n as never), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.equal(openFds(), before);
});

test('bad arguments to the calls of a connected socket', { timeout: 30_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-args')}`;
  await echoServer(t, raw);
  using socket = connectSync(raw);
  assert.throws(() => socket.readUntil(''), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => socket.readUntil(5 as never), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => socket.readUntil('\r\n', { maxBytes: 1 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => socket.read(0), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => socket.readExact(-1), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => socket.write(5 as never), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => socket.read(1, { timeout: 'soon' as never }), { code: 'ERR_INVALID_ARG_VALUE' });
  socket.write('still fine');
  assert.equal(socket.readExact(10, { timeout: 10_000 }).toString(), 'still fine');
});

test('a worker thread blocks only itself: it round-trips with a server on the main thread', { timeout: 60_000 * slow }, async () => {
  const raw = `@${uniqueName('sync-worker')}`;
  await using listener = await listen(raw);
  listener.on('connection', (conn) => conn.pipe(conn));
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     import('interprocess').then(({ connectSync }) => {
       const socket = connectSync(workerData, { timeout: 10000 });
       let ok = 0;
       for (let i = 0; i < 200; i++) {
         const message = Buffer.from('round trip ' + i);
         socket.write(message);
         if (socket.readExact(message.length, { timeout: 10000 }).equals(message)) ok++;
       }
       let timedOut = null;
       try { socket.read(1, { timeout: 100 }); } catch (error) { timedOut = error.code; }
       socket.close();
       parentPort.postMessage({ ok, timedOut });
     }, (error) => parentPort.postMessage({ error: String(error) }));`,
    { eval: true, workerData: raw },
  );
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  const [result] = (await new Promise((resolve, reject) => {
    worker.once('message', (m) => resolve([m]));
    worker.once('error', reject);
  })) as [{ ok: number; timedOut: string; error?: string }];
  clearInterval(ticker);
  await worker.terminate();
  assert.equal(result.error, undefined);
  assert.equal(result.ok, 200, 'every round trip served by this thread while the worker blocked');
  assert.equal(result.timedOut, 'ETIMEDOUT');
  assert.ok(ticks > 0, 'this thread ran its timers meanwhile');
});

test('a worker terminated with a socket open, or while blocked in a call, leaves no descriptor; a dropped socket is closed when collected', { timeout: 60_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-teardown')}`;
  const peer = spawnFixture(t, 'sync-peer', [raw, 'silent']);
  await peer.next('listening');
  const before = openFds();
  for (const blocked of [false, true]) {
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       import('interprocess').then(({ connectSync }) => {
         const sockets = [connectSync(workerData.raw), connectSync(workerData.raw)];
         parentPort.postMessage('connected');
         if (workerData.blocked) sockets[0].read(1, { timeout: 500 });
         else setInterval(() => {}, 1000);
       });`,
      { eval: true, workerData: { raw, blocked } },
    );
    await new Promise((resolve) => worker.once('message', resolve));
    await worker.terminate();
    assert.equal(openFds(), before, `the worker's descriptors are closed with it (${blocked ? 'blocked in read()' : 'idle'})`);
  }
  if (windows) return; // on Windows the addon's external closes a dropped handle (its finalizer): not checked here
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  (() => {
    connectSync(raw);
  })();
  assert.equal(openFds(), before + 1);
  for (let i = 0; i < 20 && openFds() > before; i++) {
    gc();
    await sleep(20);
  }
  assert.equal(openFds(), before, 'the dropped socket was closed when collected');
});

test('a peer in another language: a python3 server, line protocol over a socket file and an abstract name', { skip: windows && 'no python3 under Wine', timeout: 30_000 * slow }, async (t) => {
  const program = `
import socket, sys
address = sys.argv[1]
if address.startswith('@'): address = '\\0' + address[1:]
s = socket.socket(socket.AF_UNIX)
s.bind(address); s.listen(1)
print('ready', flush=True)
c, _ = s.accept()
f = c.makefile('rb')
line = f.readline()
c.sendall(line.upper() + b'tail')
c.close()
`;
  for (const raw of [testSocketPath(t, 'py.sock'), `@${uniqueName('py')}`]) {
    const peer = python(t, program, [raw]);
    await new Promise<void>((resolve) => peer.stdout!.once('data', () => resolve()));
    using socket = connectSync(raw, { timeout: 10_000 });
    socket.write('hello python\n');
    assert.equal(socket.readUntil('\n', { timeout: 10_000 }).toString(), 'HELLO PYTHON\n');
    assert.equal(socket.readExact(4, { timeout: 10_000 }).toString(), 'tail');
    assert.equal(socket.read(10, { timeout: 10_000 }), null);
    await peer.output;
  }
});

test('requestRpcSync against serveRpc() in another process: replies, remote errors, timeouts, events skipped', { timeout: 60_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-rpc')}`;
  const server = spawnFixture(t, 'sync-rpc-server', [raw]);
  await server.next('listening');
  const before = openFds();
  assert.equal(requestRpcSync(raw, 'add', [2, 3]), 5);
  const body = { text: 'héllo ✓', list: [1, null, true], nested: { deep: 'x'.repeat(100_000) } };
  assert.deepEqual(requestRpcSync(raw, 'echo', body), body);
  assert.equal(requestRpcSync(raw, 'echo'), undefined, 'no body: undefined, as request()');
  assert.deepEqual(requestRpcSync(raw, 'notifyFirst', 'after the event'), 'after the event');
  const failed = codeOf(() => requestRpcSync(raw, 'fail', null));
  assert.equal(failed.code, 'E_TEST_FAIL', 'the handler\'s own code, as request() gives it');
  assert.match(failed.error.message, /the handler failed on purpose/);
  assert.equal(codeOf(() => requestRpcSync(raw, 'missing')).code, 'ERR_INTERPROCESS_NO_HANDLER');
  const slow = codeOf(() => requestRpcSync(raw, 'never', null, { timeout: 300 }));
  assert.equal(slow.code, 'ETIMEDOUT');
  assert.match(slow.error.message, /requestRpcSync\('never'\) to .* timed out after 300 ms/);
  const small = codeOf(() => requestRpcSync(raw, 'echo', 'y'.repeat(2000), { maxMessageSize: 100 }));
  assert.equal(small.code, 'ERR_INTERPROCESS_FRAME_TOO_LARGE');
  assert.equal(openFds(), before, 'every call closed its connection');
  // The same answers as the async request gives.
  const { connectRpc } = await import('interprocess');
  await using rpc = await connectRpc(raw);
  await assert.rejects(rpc.request('fail', null), { code: 'E_TEST_FAIL' });
  await assert.rejects(rpc.request('missing'), { code: 'ERR_INTERPROCESS_NO_HANDLER' });
});

test('requestRpcSync with an authkey: the handshake both ways; a wrong or missing key is ERR_INTERPROCESS_AUTH', { timeout: 60_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-auth')}`;
  const server = spawnFixture(t, 'sync-rpc-server', [raw, JSON.stringify({ authkey: 'the shared key' })]);
  await server.next('listening');
  const before = openFds();
  assert.equal(requestRpcSync(raw, 'add', [1, 2], { authkey: 'the shared key' }), 3);
  assert.equal(requestRpcSync(raw, 'add', [1, 2], { authkey: 'the shared key', authDigest: 'sha3-256' }), 3);
  assert.equal(requestRpcSync(raw, 'add', [1, 2], { authkey: 'the shared key', authDigest: 'md5' }), 3);
  const wrong = codeOf(() => requestRpcSync(raw, 'add', [1, 2], { authkey: 'another key', timeout: 10_000 }));
  assert.equal(wrong.code, 'ERR_INTERPROCESS_AUTH');
  const missing = codeOf(() => requestRpcSync(raw, 'add', [1, 2], { timeout: 10_000 }));
  assert.equal(missing.code, 'ERR_INTERPROCESS_AUTH');
  assert.match(missing.error.message, /asks for an authkey/);
  assert.equal(openFds(), before);
});

test('requestRpcSync to a Python multiprocessing.connection Listener with an authkey (the channel wire from another language)', { skip: windows && 'no python3 under Wine', timeout: 30_000 * slow }, async (t) => {
  const socketPath = testSocketPath(t, 'mp.sock');
  // Python's own Listener runs the server's half of the handshake; the request is one frame
  // [1][u32 id][u16 length][method][JSON], the reply [2][u32 id][JSON].
  const program = `
import json, struct, sys
from multiprocessing.connection import Listener
with Listener(sys.argv[1], family='AF_UNIX', authkey=b'py key') as listener:
    print('ready', flush=True)
    with listener.accept() as conn:
        frame = conn.recv_bytes()
        assert frame[0] == 1
        (rid,) = struct.unpack('>I', frame[1:5]); (n,) = struct.unpack('>H', frame[5:7])
        method = frame[7:7 + n].decode(); body = json.loads(frame[7 + n:])
        conn.send_bytes(b'\\x04' + struct.pack('>H', 4) + b'tick' + b'{}')
        conn.send_bytes(b'\\x02' + struct.pack('>I', rid) + json.dumps({'method': method, 'sum': sum(body)}).encode())
`;
  const peer = python(t, program, [socketPath]);
  await new Promise<void>((resolve) => peer.stdout!.once('data', () => resolve()));
  assert.deepEqual(requestRpcSync(socketPath, 'sum', [1, 2, 3, 4], { authkey: 'py key', timeout: 10_000 }), { method: 'sum', sum: 10 });
  await peer.output;
});

test('requestRpcSync waits for a server that starts later, and fails when the server closes before replying', { timeout: 60_000 * slow }, async (t) => {
  const raw = `@${uniqueName('sync-rpc-late')}`;
  const client = spawnFixture(t, 'sync-client', [JSON.stringify({ op: 'rpc', name: raw, method: 'add', body: [3, 4], options: { wait: true, timeout: 30_000 } })]);
  await sleep(300);
  await using server = await serveRpc(raw);
  server.handle('add', ([a, b]: [number, number]) => a + b);
  assert.equal((await client.next<{ value: number }>('result')).value, 7);

  const partial = `@${uniqueName('sync-rpc-gone')}`;
  const peer = spawnFixture(t, 'sync-peer', [partial, 'partial']);
  await peer.next('listening');
  const closed = codeOf(() => requestRpcSync(partial, 'add', [1, 2], { timeout: 10_000 }));
  assert.equal(closed.code, 'ERR_INTERPROCESS_CLOSED');
});
