// UnixSocket.toDuplex(): a stream-type Unix socket where a Node Duplex is expected, against
// peers in other processes: piping with backpressure both ways, half-close, and HTTP (Node's own
// http client and server on one side, ours on the other).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectUnix, fsName, listenUnix, nsName, unixSocketPair } from 'interprocess';
import { openFds, patternBytes, scratchDir, spawnFixture, uniqueName } from '../helpers.js';

test('a stream socket piped through an echo peer in a child: 16 MiB there and back, intact, with the reader slower than the writer', async (t) => {
  const raw = uniqueName();
  const child = spawnFixture(t, 'unix-echo', ['stream', 'ns', raw]);
  await child.next('ready');
  const socket = await connectUnix(nsName(raw));
  const duplex = socket.toDuplex();
  assert.equal(socket.toDuplex(), duplex, 'one Duplex per socket');
  const total = 16 * 1024 * 1024;
  const chunk = patternBytes(64 * 1024, 7);
  const sentHash = createHash('sha256');
  const source = Readable.from((function* () {
    for (let sent = 0; sent < total; sent += chunk.length) {
      sentHash.update(chunk);
      yield chunk;
    }
  })());
  const receivedHash = createHash('sha256');
  let received = 0;
  let maxQueued = 0;
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(data: Buffer, _encoding, callback) {
      received += data.length;
      receivedHash.update(data);
      maxQueued = Math.max(maxQueued, socket.sendQueueLength);
      setImmediate(callback); // a slow reader: the echo, then the writer, must wait for it
    },
  });
  await Promise.all([pipeline(source, duplex), pipeline(duplex, sink)]);
  assert.equal(received, total);
  assert.equal(receivedHash.digest('hex'), sentHash.digest('hex'));
  assert.ok(maxQueued <= 64, `the writer was held back (at most ${maxQueued} sends queued at once)`);
  assert.equal(socket.closed, true, 'destroying the Duplex (pipeline does, at the end) closes the socket');
});

test('end() on the Duplex is a shutdown: the peer reads the end and answers; the peer\'s end ends the readable side', async () => {
  const [ours, theirs] = unixSocketPair();
  const duplex = ours.toDuplex({ allowHalfOpen: true });
  duplex.end('question');
  const asked = await theirs.receive();
  assert.equal(String(asked!.data), 'question');
  assert.equal(await theirs.receive(), null, 'the peer reads the end');
  await theirs.send('answer after your end');
  await theirs.end();
  const chunks: Buffer[] = [];
  for await (const data of duplex) chunks.push(data as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'answer after your end');
  duplex.destroy();
  assert.equal(ours.closed, true, 'destroying the Duplex closes the socket');
  await theirs.close();
});

test('descriptors that arrive on a Duplex are closed, not leaked; a datagram socket has no Duplex', async () => {
  await sleep(50); // the descriptors of the tests before are closed by then
  const before = openFds();
  const [ours, theirs] = unixSocketPair();
  const duplex = ours.toDuplex();
  await theirs.send('with a descriptor', { fds: [0] });
  const [data] = (await new Promise<Buffer[]>((resolve) => duplex.once('data', (d: Buffer) => resolve([d]))));
  assert.equal(String(data), 'with a descriptor');
  duplex.destroy();
  await theirs.close();
  // Closes finish on the loop; descriptors of tests before may close meanwhile too (so at most).
  for (let i = 0; i < 100 && openFds() > before; i++) await sleep(20);
  assert.ok(openFds() <= before, `${openFds()} descriptors open, ${before} before`);
  const [a, b] = unixSocketPair({ type: 'datagram' });
  assert.throws(() => a.toDuplex(), { code: 'ERR_INVALID_ARG_VALUE' });
  a.destroy();
  b.destroy();
});

test('HTTP over the Duplex: our client to Node\'s http server in a child, and Node\'s http client in a child to our server', async (t) => {
  const dir = scratchDir(t);
  // Our client, Node's server.
  const serverPath = path.join(dir, 'http.sock');
  const server = spawnFixture(t, 'http-unix', ['server', serverPath]);
  await server.next('ready');
  for (const [method, urlPath, body] of [['POST', '/echo', 'hello over a unix socket'], ['GET', '/big', null]] as const) {
    const socket = await connectUnix(serverPath);
    const response = await new Promise<{ status: number | undefined; length: string | undefined; body: Buffer }>((resolve, reject) => {
      const req = http.request({ method, path: urlPath, createConnection: () => socket.toDuplex() }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, length: res.headers['x-length'] as string | undefined, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body ?? undefined);
    });
    assert.equal(response.status, 200);
    if (body === null) {
      assert.equal(response.body.length, 1024 * 1024);
    } else {
      assert.equal(response.length, String(body.length));
      assert.equal(response.body.toString(), body.toUpperCase());
    }
    if (!socket.closed) await once(socket, 'close');
  }
  server.send({ type: 'stop' });
  await server.exited;

  // Node's client, our server: each accepted connection's Duplex handed to an http.Server.
  const listenPath = path.join(dir, 'ours.sock');
  const listener = await listenUnix(fsName(listenPath));
  t.after(() => listener.close());
  const httpServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('x-served-by', 'interprocess');
      res.end(`you said: ${Buffer.concat(chunks).toString()}`);
    });
  });
  listener.on('connection', (socket) => httpServer.emit('connection', socket.toDuplex()));
  const client = spawnFixture(t, 'http-unix', ['client', listenPath]);
  await client.next('ready');
  client.send({ type: 'go' });
  const result = await client.next<{ status: number; header: string; body: string }>('result');
  assert.deepEqual({ status: result.status, header: result.header, body: result.body }, { status: 200, header: 'interprocess', body: 'you said: from a child over plain net' });
  httpServer.close();
});

