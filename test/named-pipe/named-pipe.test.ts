// Windows named pipes across real processes: every mode and direction, message boundaries and
// quotas, process ids, security descriptors, busy instances, dead clients, worker teardown.
// Off Windows: the clear error that replaces them.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { once } from 'node:events';
import { test } from 'node:test';
import { getSystemErrorName } from 'node:util';
import { Worker } from 'node:worker_threads';
import { InterprocessError, type MessagePipe, type NamedPipeStream, connect, connectNamedPipe, fsName, listen, listenNamedPipe, nsName } from 'interprocess';
import { fromSystemError, nativeError } from '#internal/errors.js';
import { requireNative } from '#internal/native/addon.js';
import { toPipeName } from '#internal/named-pipe/name.js';
import { type Fixture, patternBytes, readAll, spawnFixture, uniqueName } from '../helpers.js';

const windows = process.platform === 'win32';
const wine = windows && process.env.INTERPROCESS_WINE === '1';
const windowsOnly = !windows && 'named pipes are a Windows primitive (the test below checks the error that replaces them here)';
const hash = (data: Buffer) => createHash('sha256').update(data).digest('hex');

type Mode = 'byte' | 'message';
type Direction = 'duplex' | 'clientToServer' | 'serverToClient';

async function peer(t: import('node:test').TestContext): Promise<Fixture> {
  const child = spawnFixture(t, 'named-pipe-peer');
  await child.next('ready');
  return child;
}

/** The next connection on `iterator` whose client is `pid`; others (dead clients) are dropped. */
async function connectionOf<T extends MessagePipe | NamedPipeStream>(iterator: AsyncIterator<T>, pid: number): Promise<T> {
  for (;;) {
    const { value, done } = await iterator.next();
    assert.ok(!done, 'the listener ended');
    if (value.pipeEnds().clientProcessId === pid) return value;
    value.destroy();
  }
}

async function checkFlow(child: Fixture, conn: MessagePipe | NamedPipeStream, mode: Mode, childSends: boolean): Promise<void> {
  const sizes = [0, 1, 4096, 1_000_000];
  if (mode === 'message') {
    const pipe = conn as MessagePipe;
    if (childSends) {
      // A message larger than the pipe's buffer is taken only as it is read: receive meanwhile.
      child.send({ type: 'send', sizes });
      child.send({ type: 'close' });
      const got: Buffer[] = [];
      for (let m = await pipe.receive(); m !== null; m = await pipe.receive()) got.push(m);
      await child.next('sent');
      assert.deepEqual(got.map((m) => m.length), sizes, 'boundaries kept, nothing lost at close');
      got.forEach((m, i) => assert.ok(m.equals(patternBytes(sizes[i]!, sizes[i]!)), `message ${i} intact`));
      await child.next('closed');
    } else {
      child.send({ type: 'receive', count: sizes.length + 1 });
      await Promise.all(sizes.map((size) => pipe.send(patternBytes(size, size))));
      await pipe.close(); // every message is delivered before the end
      const report = await child.next<{ sizes: number[]; hashes: string[]; ended: boolean }>('received');
      assert.deepEqual(report.sizes, sizes);
      assert.deepEqual(report.hashes, sizes.map((size) => hash(patternBytes(size, size))));
      assert.equal(report.ended, true);
    }
    return;
  }
  const stream = conn as NamedPipeStream;
  const total = 3_000_000;
  if (childSends) {
    const reading = readAll(stream);
    child.send({ type: 'send', sizes: [total] });
    await child.next('sent');
    child.send({ type: 'close' });
    const data = await reading;
    assert.equal(data.length, total);
    assert.equal(hash(data), hash(patternBytes(total, 1)));
  } else {
    child.send({ type: 'readAll' });
    stream.end(patternBytes(total, 1)); // end right away: the close must not cut the data off
    const report = await child.next<{ length: number; hash: string }>('read');
    assert.deepEqual([report.length, report.hash], [total, hash(patternBytes(total, 1))]);
  }
}

for (const mode of ['byte', 'message'] as const) {
  for (const direction of ['duplex', 'clientToServer', 'serverToClient'] as const) {
    test(`${mode} mode, ${direction}: a dead first client, then data both allowed ways, process ids`, { skip: windowsOnly, timeout: 60_000 }, async (t) => {
      const name = uniqueName();
      await using listener = await listenNamedPipe(name, { type: mode, direction });
      const connections = listener[Symbol.asyncIterator]() as AsyncIterator<MessagePipe | NamedPipeStream>;
      // A client that connects and dies at once: the listener must go on accepting.
      const dead = await peer(t);
      dead.send({ type: 'connectAndLeave', name, mode, direction });
      await dead.exited;
      const child = await peer(t);
      child.send({ type: 'connect', name, mode, direction });
      const connected = await child.next<{ pid: number; ends: { serverProcessId: number; clientProcessId: number }; credentials: object; name: string }>('connected');
      const conn = await connectionOf(connections, connected.pid);
      assert.equal(conn.pipeEnds().clientProcessId, child.child.pid, 'the server sees the client\'s pid');
      assert.equal(conn.pipeEnds().serverProcessId, process.pid);
      assert.deepEqual(conn.peerCredentials(), { pid: child.child.pid, uid: null, gid: null }, 'the server\'s peer is the client');
      assert.equal(connected.ends.serverProcessId, process.pid, 'the client sees the server\'s pid');
      assert.equal(connected.ends.clientProcessId, child.child.pid);
      assert.deepEqual(connected.credentials, { pid: process.pid, uid: null, gid: null }, 'the client\'s peer is the server');
      assert.equal(connected.name, `\\\\.\\pipe\\${name}`, 'the client\'s name is the pipe it connected to');
      assert.equal(String(conn.name), connected.name, 'an accepted connection\'s name is its listener\'s');
      if (direction !== 'serverToClient') await checkFlow(child, conn, mode, true);
      else await checkFlow(child, conn, mode, false);
      if (direction === 'duplex') {
        // The other way on a fresh connection (the first one is closed by now).
        child.send({ type: 'connect', name, mode, direction });
        const again = await child.next<{ pid: number }>('connected');
        await checkFlow(child, await connectionOf(connections, again.pid), mode, false);
      }
      child.send({ type: 'exit' });
      // Who was at the other end is still known once the connection is closed.
      conn.destroy();
      assert.deepEqual(conn.peerCredentials(), { pid: child.child.pid, uid: null, gid: null });
      assert.equal(conn.pipeEnds().clientProcessId, child.child.pid);
    });
  }
}

test('a message over maxMessageSize is an error with its size, and the next message arrives', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const name = uniqueName();
  await using listener = await listenNamedPipe(name, { type: 'message', maxMessageSize: 1000 });
  const child = await peer(t);
  child.send({ type: 'connect', name, mode: 'message', direction: 'duplex' });
  const { pid } = await child.next<{ pid: number }>('connected');
  const conn = await connectionOf(listener[Symbol.asyncIterator](), pid);
  child.send({ type: 'send', sizes: [5000, 1000, 10] });
  await assert.rejects(conn.receive(), (error: NodeJS.ErrnoException & { size?: number }) => {
    assert.equal(error.code, 'ERR_INTERPROCESS_MESSAGE_TOO_LARGE');
    assert.equal(error.size, 5000);
    return true;
  });
  assert.ok((await conn.receive())!.equals(patternBytes(1000, 1000)), 'a message of exactly the limit passes');
  await child.next('sent');
  assert.equal(conn.peekMessageLength(), 10, 'peek tells the next message\'s size without taking it');
  assert.ok((await conn.receive())!.equals(patternBytes(10, 10)));
  assert.equal(conn.peekMessageLength(), null);
  child.send({ type: 'exit' });
});

for (const mode of ['byte', 'message'] as const) {
  test(`20 concurrent clients in another process exchange 1 MiB each, ${mode} mode, checksummed`, { skip: windowsOnly, timeout: 120_000 }, async (t) => {
    const name = uniqueName();
    await using listener = await listenNamedPipe(name, { type: mode });
    let served = 0;
    listener.on('connection', (conn: MessagePipe | NamedPipeStream) => {
      served++;
      if (mode === 'byte') {
        const stream = conn as NamedPipeStream;
        stream.on('error', () => {}); // a client may leave while the echo flows
        stream.pipe(stream);
      } else {
        void (async () => {
          const pipe = conn as MessagePipe;
          for await (const message of pipe) await pipe.send(message);
        })().catch(() => {});
      }
    });
    const child = await peer(t);
    child.send({ type: 'clients', name, mode, count: 20, bytes: 1 << 20 });
    const report = await child.next<{ ok: number; failures: string[] }>('clientsDone');
    assert.deepEqual(report.failures, []);
    assert.equal(report.ok, 20);
    assert.equal(served, 20);
    child.send({ type: 'exit' });
  });
}

test('a client waits while every instance is busy, and times out', { skip: windowsOnly, timeout: 30_000 }, async () => {
  const name = uniqueName();
  await using listener = await listenNamedPipe(name, { maxInstances: 1 });
  const first = await connectNamedPipe(name);
  const accepted = await listener[Symbol.asyncIterator]().next();
  await assert.rejects(connectNamedPipe(name, { timeout: 300 }), { code: 'ETIMEDOUT' });
  const waiting = connectNamedPipe(name, { timeout: 10_000 });
  await sleep(100);
  first.destroy();
  (accepted.value as NamedPipeStream).destroy(); // frees the instance: the waiting client gets one
  const second = await waiting;
  assert.equal(second.pipeEnds().serverProcessId, process.pid);
  second.destroy();
});

test('a peer that vanishes mid-transfer ends only its connection', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const name = uniqueName();
  await using listener = await listenNamedPipe(name);
  const connections = listener[Symbol.asyncIterator]();
  const child = await peer(t);
  child.send({ type: 'connect', name, mode: 'byte', direction: 'duplex' });
  const { pid } = await child.next<{ pid: number }>('connected');
  const conn = await connectionOf(connections, pid);
  const ended = new Promise<void>((resolve) => {
    conn.on('error', () => resolve());
    conn.on('close', () => resolve());
  });
  conn.resume();
  child.send({ type: 'send', sizes: [100_000] });
  await child.next('sent');
  child.child.kill('SIGKILL');
  await ended;
  // The listener is unharmed: the next client is served.
  const next = await connectNamedPipe(name);
  const served = await connections.next();
  assert.equal((served.value as NamedPipeStream).pipeEnds().clientProcessId, process.pid);
  next.destroy();
  (served.value as NamedPipeStream).destroy();
});

test('a security descriptor is applied; one that denies everyone refuses clients with EACCES', { skip: windowsOnly, timeout: 30_000 }, async () => {
  const name = uniqueName();
  await assert.rejects(listenNamedPipe(name, { securityDescriptor: 'not SDDL' }), { code: 'EINVAL' });
  await using listener = await listenNamedPipe(name, { securityDescriptor: 'D:(D;;GA;;;WD)' });
  if (wine) {
    // Wine keeps the descriptor but does not enforce it on pipes: check that it is the one given.
    assert.equal(listener.securityDescriptor(), 'D:(D;;GA;;;WD)');
    return;
  }
  await assert.rejects(connectNamedPipe(name), { code: 'EACCES' });
});

test('the first instance is claimed: a second server on the name fails with EADDRINUSE', { skip: windowsOnly || (wine && 'Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE'), timeout: 30_000 }, async () => {
  const name = uniqueName();
  await using listener = await listenNamedPipe(name);
  assert.ok(listener.listening);
  await assert.rejects(listenNamedPipe(name), { code: 'EADDRINUSE' });
  await assert.rejects(listen(nsName(name)), { code: 'EADDRINUSE' });
});

test('a client that connects and leaves before the server waits for it is skipped (native)', { skip: windowsOnly, timeout: 30_000 }, async () => {
  const native = requireNative('test').namedPipe;
  const c = native.constants;
  const path = `\\\\.\\pipe\\${uniqueName()}`;
  const server = native.create(path, c.PIPE_ACCESS_DUPLEX, c.PIPE_TYPE_BYTE | c.PIPE_READMODE_BYTE, 1, 4096, 4096, null, false);
  native.open(path, c.GENERIC_READ | c.GENERIC_WRITE, false).close();
  // ConnectNamedPipe now finds a client that has gone (ERROR_NO_DATA): it must wait for the next.
  const connected = new Promise<Error | null>((resolve) => server.connect(resolve));
  const outcome = await Promise.race([connected, sleep(200).then(() => 'waiting')]);
  assert.equal(outcome, 'waiting', 'the dead client was not reported as a connection');
  const client = native.open(path, c.GENERIC_READ | c.GENERIC_WRITE, false);
  assert.equal(await connected, null);
  assert.equal(server.info().clientProcessId, process.pid);
  client.close();
  server.close();
});

/** A native message-mode server instance and its connected client (duplex), on a fresh name. */
async function nativePair(bufferSize: number, clientMessageMode = true) {
  const native = requireNative('test').namedPipe;
  const c = native.constants;
  const path = `\\\\.\\pipe\\${uniqueName()}`;
  const server = native.create(path, c.PIPE_ACCESS_DUPLEX, c.PIPE_TYPE_MESSAGE | c.PIPE_READMODE_MESSAGE, 1, bufferSize, bufferSize, null, false);
  const connected = new Promise<Error | null>((resolve) => server.connect(resolve));
  const client = native.open(path, c.GENERIC_READ | c.GENERIC_WRITE, clientMessageMode);
  assert.equal(await connected, null);
  return { native, server, client };
}

/** What a native write gives: 'taken' at once, or the callback's error (null: done). */
function nativeWrite(pipe: import('#internal/native/addon.js').NativeNamedPipe, data: Buffer): Promise<'taken' | (Error & { bytesWritten?: number }) | null> {
  return new Promise((resolve) => {
    if (pipe.write(data, resolve)) resolve('taken');
  });
}

test('a write to a closed peer is EPIPE on every path: at once, pending, synchronous', { skip: windowsOnly, timeout: 30_000 }, async () => {
  // The peer gone before the write: WriteFile fails at once (ERROR_NO_DATA).
  const first = await nativePair(4096);
  first.client.close();
  const atOnce = await nativeWrite(first.server, Buffer.from('nobody reads'));
  assert.ok(atOnce instanceof Error, 'the write failed');
  assert.equal((atOnce as NodeJS.ErrnoException).code, 'EPIPE');
  first.server.close();
  // The peer leaves while a write waits for room (ERROR_BROKEN_PIPE or ERROR_NO_DATA on completion).
  const second = await nativePair(4096);
  const pending = nativeWrite(second.server, Buffer.alloc(1_000_000, 7));
  await sleep(100);
  second.client.close();
  const outcome = await pending;
  assert.ok(outcome instanceof Error, 'the pending write failed');
  assert.equal((outcome as NodeJS.ErrnoException).code, 'EPIPE');
  second.server.close();
  // The synchronous path (writeSync of a pipe() end) says the same.
  const [readFd, writeFd] = first.native.pair(4096);
  fs.closeSync(readFd);
  assert.throws(() => first.native.syncIo(writeFd, Buffer.from('x'), true, -1), { code: 'EPIPE' });
  fs.closeSync(writeFd);
  // The same through a MessagePipe, at once and pending.
  const name = uniqueName();
  await using listener = await listenNamedPipe(name, { type: 'message' });
  const client = await connectNamedPipe(name, { type: 'message' });
  const server = (await listener[Symbol.asyncIterator]().next()).value as MessagePipe;
  const waiting = server.send(Buffer.alloc(1_000_000, 1)).then(() => null, (error: NodeJS.ErrnoException) => error);
  await sleep(100);
  client.destroy();
  assert.equal((await waiting)?.code, 'EPIPE');
  await assert.rejects(server.send('after the peer left'), { code: 'EPIPE' });
  server.destroy();
});

test('a destroyed write that sent part of its message says how much (ERR_INTERPROCESS_SHORT_WRITE, bytesWritten)', { skip: windowsOnly, timeout: 30_000 }, async () => {
  // The client reads in byte mode: 1000 bytes of the server's message, which then waits, part sent.
  const { server, client } = await nativePair(4096, false);
  const pending = nativeWrite(server, Buffer.alloc(1_000_000, 3));
  const part = await new Promise<Buffer | null>((resolve, reject) => {
    const got = client.read(1000, (error, message) => (error ? reject(error) : resolve(message)));
    if (got !== undefined) resolve(got);
  });
  assert.equal(part?.length, 1000);
  server.close(true);
  const outcome = await pending;
  assert.ok(outcome instanceof Error, 'the cancelled write failed');
  const sent = outcome.bytesWritten;
  assert.equal(typeof sent, 'number', `bytesWritten is set on ${outcome.message}`);
  if (sent! > 0) {
    assert.equal((outcome as NodeJS.ErrnoException).code, 'ERR_INTERPROCESS_SHORT_WRITE');
    assert.ok(sent! >= 1000 && sent! < 1_000_000, `${sent} bytes of 1000000 were sent`);
    assert.match(outcome.message, /cancel/);
  } else {
    assert.equal((outcome as NodeJS.ErrnoException).code, 'ECANCELED');
  }
  client.close();
});

test('a worker terminated with pipes waiting tears down cleanly', { skip: windowsOnly, timeout: 30_000 }, async () => {
  const name = uniqueName();
  const worker = new Worker(new URL('../fixtures/named-pipe-worker.js', import.meta.url), { workerData: { name } });
  const [ready] = await Promise.all([new Promise((resolve) => worker.once('message', resolve))]);
  assert.equal(ready, 'waiting');
  await worker.terminate();
  // The name is free again and this thread's pipes work.
  await using listener = await listenNamedPipe(name, { type: 'message' });
  const client = await connectNamedPipe(name, { type: 'message' });
  const server = (await listener[Symbol.asyncIterator]().next()).value as MessagePipe;
  await client.send('after the worker');
  assert.equal(String(await server.receive()), 'after the worker');
  await client.close();
  assert.equal(await server.receive(), null);
});

test('local sockets on Windows are our pipes: peerCredentials() gives the peer\'s pid', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const name = uniqueName();
  await using listener = await listen(nsName(name));
  const child = await peer(t);
  child.send({ type: 'connect', name, mode: 'byte', direction: 'duplex' });
  const connected = await child.next<{ pid: number; ends: { serverProcessId: number } }>('connected');
  const { value: socket } = await listener[Symbol.asyncIterator]().next();
  assert.deepEqual(socket!.peerCredentials(), { pid: connected.pid, uid: null, gid: null });
  assert.equal(connected.ends.serverProcessId, process.pid);
  const own = await connect(nsName(name));
  assert.equal(own.peerCredentials().pid, process.pid);
  own.destroy();
  socket!.destroy();
  child.send({ type: 'exit' });
});

test("a named-pipe listener's name is a LocalSocketName: 'NAME', '@NAME', nsName('NAME') and the full path are one pipe", { skip: windowsOnly, timeout: 30_000 }, async () => {
  const raw = uniqueName();
  await using listener = await listenNamedPipe(`@${raw}`);
  assert.equal(listener.name.kind, 'namespaced');
  assert.equal(listener.name.address, `\\\\.\\pipe\\${raw}`);
  assert.equal(String(listener.name), listener.name.address);
  for (const name of [raw, nsName(raw), listener.name.address]) {
    const client = await connectNamedPipe(typeof name === 'string' ? name : name.address);
    const accepted = (await listener.iterator({ closeOnReturn: false }).next()).value as NamedPipeStream;
    assert.equal(accepted.pipeEnds().clientProcessId, process.pid);
    client.destroy();
    accepted.destroy();
  }
  assert.equal(listener.close(), listener.close(), 'close() is memoised');
});

/** A listener of the message type and one connection to it, both in this process. */
async function messagePair(t: import('node:test').TestContext) {
  const name = uniqueName();
  const listener = await listenNamedPipe(name, { type: 'message' });
  t.after(() => listener.close());
  const accepting = listener[Symbol.asyncIterator]().next();
  const client = await connectNamedPipe(name, { type: 'message' });
  const server = (await accepting).value as MessagePipe;
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  return { name, client, server };
}

test('a MessagePipe closes once: closed, a memoised close(), ERR_INTERPROCESS_CLOSED after, \'end\' at the peer\'s end', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const { client, server } = await messagePair(t);
  assert.equal(client.closed, false);
  const ended = once(server, 'end');
  await client.send('last');
  const closing = client.close();
  assert.equal(client.close(), closing, 'a second close() returns the same promise');
  await assert.rejects(client.send('too late'), { code: 'ERR_INTERPROCESS_CLOSED' }, 'a send after close() is refused, not lost silently');
  await closing;
  assert.equal(client.closed, true);
  await assert.rejects(client.receive(), { code: 'ERR_INTERPROCESS_CLOSED' });
  assert.throws(() => client.peekMessageLength(), { code: 'ERR_INTERPROCESS_CLOSED' });
  assert.equal(String(await server.receive()), 'last', 'close() flushed');
  assert.equal(await server.receive(), null);
  await ended;
  // destroy(error): 'error' with it, then 'close'; later calls fail with it.
  const failure = new Error('gone wrong');
  const events: string[] = [];
  server.on('error', (error) => events.push(`error:${error.message}`));
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve(void events.push('close'))));
  server.destroy(failure);
  assert.equal(server.closed, true);
  await closed;
  assert.deepEqual(events, ['error:gone wrong', 'close']);
  await assert.rejects(server.send('x'), failure);
});

test('signal on send and receive: ABORT_ERR, the pipe stays usable and no message is lost', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const { client, server } = await messagePair(t);
  // A receive() aborted while it waits: the message that comes next goes to the next receive().
  const controller = new AbortController();
  const waiting = server.receive({ signal: controller.signal });
  controller.abort();
  await assert.rejects(waiting, { code: 'ABORT_ERR', name: 'AbortError' });
  await client.send('one');
  await client.send('two');
  assert.equal(String(await server.receive()), 'one');
  // Aborted before the call: nothing is received, nothing is sent.
  await assert.rejects(server.receive({ signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  await assert.rejects(client.send('never', { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  await client.send('three', { signal: new AbortController().signal });
  assert.equal(String(await server.receive()), 'two');
  assert.equal(String(await server.receive()), 'three', 'the aborted send sent nothing');
  await assert.rejects(server.receive({ signal: 'no' as unknown as AbortSignal }), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('connectNamedPipe: signal aborts a client waiting for a busy pipe', { skip: windowsOnly, timeout: 30_000 }, async () => {
  const name = uniqueName();
  await using listener = await listenNamedPipe(name, { maxInstances: 1 });
  const first = await connectNamedPipe(name);
  const accepted = (await listener[Symbol.asyncIterator]().next()).value as NamedPipeStream;
  const controller = new AbortController();
  const waiting = connectNamedPipe(name, { signal: controller.signal });
  await sleep(200);
  controller.abort();
  await assert.rejects(waiting, { code: 'ABORT_ERR' });
  first.destroy();
  accepted.destroy();
});

test('leaving a for await loop closes the MessagePipe; iterator({ closeOnReturn: false }) keeps it and its unread messages', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const { client, server } = await messagePair(t);
  for (const m of ['a', 'b', 'c']) await client.send(m);
  for await (const message of server.iterator({ closeOnReturn: false })) {
    assert.equal(String(message), 'a');
    break;
  }
  assert.equal(server.closed, false);
  assert.equal(String(await server.receive()), 'b', 'the next receive() gets the next message');
  for await (const message of server) {
    assert.equal(String(message), 'c', 'and the next loop the one after');
    break;
  }
  assert.equal(server.closed, true, 'leaving the loop closed the pipe');
  assert.equal(await client.receive(), null, 'the peer sees the end');
});

test('\'message\' listeners get every message (an oversize one as \'error\'); removed, the rest waits for receive()', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const name = uniqueName();
  const listener = await listenNamedPipe(name, { type: 'message', maxMessageSize: 100 });
  t.after(() => listener.close());
  const accepting = listener[Symbol.asyncIterator]().next();
  const client = await connectNamedPipe(name, { type: 'message' });
  const server = (await accepting).value as MessagePipe;
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  const got: string[] = [];
  let third!: () => void;
  const thirdArrived = new Promise<void>((resolve) => (third = resolve));
  let messages = 0;
  const onMessage = (message: Buffer) => {
    got.push(String(message));
    if (++messages === 3) {
      server.off('message', onMessage);
      third();
    }
  };
  server.on('error', (error) => got.push(`error:${(error as InterprocessError).code}:${(error as InterprocessError).size}`));
  server.on('message', onMessage);
  await client.send('one');
  await client.send(Buffer.alloc(500, 'x'));
  for (const m of ['two', 'three', 'four', 'five']) await client.send(m);
  await thirdArrived;
  assert.deepEqual(got, ['one', 'error:ERR_INTERPROCESS_MESSAGE_TOO_LARGE:500', 'two', 'three']);
  assert.equal(String(await server.receive()), 'four', 'nothing was lost when the listener left');
  assert.equal(String(await server.receive()), 'five');
  server.on('message', () => {});
  await sleep(10);
  await assert.rejects(server.receive(), { code: 'ERR_INVALID_STATE' }, 'receive() while listeners take the messages');
});

test('NamedPipeStream: allowHalfOpen decides whether this side ends by itself after the peer\'s end', { skip: windowsOnly, timeout: 30_000 }, async () => {
  const name = uniqueName();
  await using listener = await listenNamedPipe(name);
  const connections = listener[Symbol.asyncIterator]();
  for (const allowHalfOpen of [false, true]) {
    const client = await connectNamedPipe(name, { allowHalfOpen });
    const server = (await connections.next()).value as NamedPipeStream;
    assert.equal(client.allowHalfOpen, allowHalfOpen);
    client.resume();
    server.end('bye');
    await once(client, 'end');
    await sleep(50);
    assert.equal(client.writableEnded, !allowHalfOpen, allowHalfOpen ? 'the writable side waits for our end()' : 'the writable side ended with the readable one');
    client.destroy();
    server.destroy();
  }
});

test('names: NAME, @NAME, nsName(NAME) and the pipe path reach the same pipe; .name is a LocalSocketName', { skip: windowsOnly, timeout: 30_000 }, async () => {
  const name = uniqueName();
  await using listener = await listenNamedPipe(`@${name}`);
  const connections = listener[Symbol.asyncIterator]();
  const path = `\\\\.\\pipe\\${name}`;
  for (const [given, kind] of [[name, 'namespaced'], [`@${name}`, 'namespaced'], [nsName(name), 'namespaced'], [path, 'filesystem'], [fsName(path), 'filesystem']] as const) {
    const client = await connectNamedPipe(given);
    const server = (await connections.next()).value as NamedPipeStream;
    assert.equal(client.name!.address, path);
    assert.equal(client.name!.kind, kind);
    assert.equal(String(client.name), path);
    assert.equal(server.name!.address, path);
    client.destroy();
    server.destroy();
  }
});

test('a Windows code mapped to the Unix one is built with it: its errno matches its code', { skip: windowsOnly, timeout: 30_000 }, async () => {
  // A second server on a name whose instances are all taken: EBUSY (or EPERM) from Windows,
  // EADDRINUSE (or EACCES) as Unix would say.
  const name = uniqueName();
  await using listener = await listenNamedPipe(name, { maxInstances: 1 });
  await assert.rejects(listenNamedPipe(name, { firstInstance: false }), (error: InterprocessError) => {
    assert.ok(error instanceof InterprocessError);
    assert.ok(['EADDRINUSE', 'EACCES'].includes(error.code), error.code);
    assert.equal(getSystemErrorName(error.errno!), error.code, `errno ${error.errno} is ${error.code}'s`);
    return true;
  });
  assert.ok(listener.listening);
});

test('fromSystemError with a code builds the error with it (errno, message fields) instead of rewriting it', () => {
  const native = nativeError('EPERM', 'CreateFile EPERM (operation not permitted)', -1, 'CreateFile');
  const error = fromSystemError(native, 'Cannot connect to x', 'A hint.', { code: 'EACCES', bytesWritten: 3 });
  assert.ok(error instanceof InterprocessError);
  assert.equal(error.code, 'EACCES');
  assert.equal(getSystemErrorName(error.errno!), 'EACCES');
  assert.equal(error.syscall, 'CreateFile');
  assert.equal(error.bytesWritten, 3);
  assert.equal(error.cause, native);
  assert.equal(error.message, 'Cannot connect to x: CreateFile EPERM (operation not permitted). A hint.');
  assert.deepEqual(Object.getOwnPropertyDescriptor(error, 'code'), { value: 'EACCES', writable: true, enumerable: true, configurable: true });
  // Without a code, or with the same one, nothing changes.
  assert.equal(fromSystemError(native, 'x').errno, -1);
  const made = new InterprocessError('EACCES', 'made');
  assert.equal(fromSystemError(made, 'x', undefined, { code: 'EACCES' }), made);
});

test('named-pipe names resolve to LocalSocketNames of Windows on every OS', () => {
  const path = '\\\\.\\pipe\\my-app';
  for (const given of ['my-app', '@my-app', nsName('my-app')]) {
    const resolved = toPipeName(given);
    assert.deepEqual([resolved.kind, resolved.name, resolved.address, String(resolved)], ['namespaced', 'my-app', path, path]);
  }
  for (const given of [path, '//./pipe/my-app', fsName(path, 'win32')]) {
    const resolved = toPipeName(given);
    assert.deepEqual([resolved.kind, resolved.address], ['filesystem', path]);
  }
  assert.equal(toPipeName('\\\\host\\pipe\\x').address, '\\\\host\\pipe\\x');
  for (const bad of ['', '@', 'a\\b', 'a/b', 'x\0', `${'x'.repeat(300)}`, fsName('/tmp/not-a-pipe', 'linux')]) {
    assert.throws(() => toPipeName(bad), { code: 'ERR_INVALID_ARG_VALUE', name: 'TypeError' }, JSON.stringify(String(bad)));
  }
  assert.throws(() => toPipeName(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('off Windows, named pipes fail with ERR_INTERPROCESS_UNSUPPORTED', { skip: windows && 'this is Windows' }, async () => {
  await assert.rejects(listenNamedPipe('x'), { code: 'ERR_INTERPROCESS_UNSUPPORTED', message: /listen\(\)\/connect\(\)/ });
  await assert.rejects(connectNamedPipe('x'), { code: 'ERR_INTERPROCESS_UNSUPPORTED' });
  await assert.rejects(listenNamedPipe('a\\b'), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(listenNamedPipe('x', { type: 'stream' as never }), { code: 'ERR_INVALID_ARG_VALUE' });
  // Names and options are checked first, on every OS.
  await assert.rejects(connectNamedPipe(nsName('x')), { code: 'ERR_INTERPROCESS_UNSUPPORTED' });
  await assert.rejects(connectNamedPipe('a/b'), { code: 'ERR_INVALID_ARG_VALUE', name: 'TypeError' });
  await assert.rejects(connectNamedPipe('x', { type: 'stream' as 'byte' }), { code: 'ERR_INVALID_ARG_VALUE', message: /options\.type/ });
  await assert.rejects(connectNamedPipe('x', { allowHalfOpen: 1 as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' });
});
