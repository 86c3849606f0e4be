// Windows named pipes as handles, and who the client is: writeThrough (the flag as Windows holds
// it), the raw handle of a connection and adopting one, handing a connection to a child
// (spawnWith, shareWith), impersonating the client for one synchronous call, the client's user
// against allow 'same-user', and createConnection()'s server pid. Off Windows: the typed errors.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InterprocessError, type MessagePipe, NamedPipeStream, connectNamedPipe, createConnection, listen, listenNamedPipe, namedPipeFromFd, namedPipeFromHandle, nsName, spawnWith } from 'interprocess';
import { requireNative } from '#internal/native/addon.js';
import { isSameUser } from '#internal/named-pipe/handle.js';
import { exitOf, scratchDir, spawnFixture, uniqueName } from '../helpers.js';

const windows = process.platform === 'win32';
const windowsOnly = !windows && 'named pipes are a Windows primitive (the last tests check the errors that replace them here)';
const adopter = fileURLToPath(new URL('../fixtures/named-pipe-adopter.js', import.meta.url));

/** A listener of `type` and one connection to it made in this process: [server end, client end]. */
async function pair<T extends 'byte' | 'message'>(t: import('node:test').TestContext, type: T, listenOptions: object = {}, connectOptions: object = {}) {
  const name = uniqueName();
  const listener = await listenNamedPipe(name, { type, ...listenOptions });
  t.after(() => listener.close());
  const accepting = listener.iterator({ closeOnReturn: false }).next();
  const client = (await connectNamedPipe(name, { type, ...connectOptions } as never)) as T extends 'message' ? MessagePipe : NamedPipeStream;
  const server = (await accepting).value as T extends 'message' ? MessagePipe : NamedPipeStream;
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  return { name, listener, server, client };
}

const writeThroughOf = (handle: number) => {
  const native = requireNative('test').namedPipe;
  return (native.describe(handle).mode & native.constants.FILE_WRITE_THROUGH) !== 0;
};

for (const type of ['byte', 'message'] as const) {
  test(`writeThrough (${type} type): FILE_FLAG_WRITE_THROUGH is on the handles asked for, and only on those`, { skip: windowsOnly, timeout: 30_000 }, async (t) => {
    const plain = await pair(t, type);
    assert.equal(writeThroughOf(plain.server.handle), false, 'not by default (server)');
    assert.equal(writeThroughOf(plain.client.handle), false, 'not by default (client)');
    const both = await pair(t, type, { writeThrough: true }, { writeThrough: true });
    assert.equal(writeThroughOf(both.server.handle), true, 'the server instance has it');
    assert.equal(writeThroughOf(both.client.handle), true, 'the client end has it');
    // The flag belongs to each handle: a client without it on a write-through server has none.
    const client = await connectNamedPipe(both.name, { type } as never) as NamedPipeStream | MessagePipe;
    assert.equal(writeThroughOf(client.handle), false);
    client.destroy();
    // Data flows as ever (what the flag changes shows only across machines).
    if (type === 'message') {
      await (both.client as MessagePipe).send('through');
      assert.equal(String(await (both.server as MessagePipe).receive()), 'through');
    }
    await assert.rejects(listenNamedPipe(uniqueName(), { writeThrough: 1 as never }), { code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(connectNamedPipe(uniqueName(), { writeThrough: 'yes' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  });
}

test('.handle: the pipe\'s own handle while open, a typed error after; adopting it in this process', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const native = requireNative('test').namedPipe;
  const bytes = await pair(t, 'byte');
  const { handle } = bytes.server;
  assert.ok(Number.isInteger(handle) && handle > 0, `a handle number: ${handle}`);
  const info = native.describe(handle);
  assert.equal(info.fileType, native.constants.FILE_TYPE_PIPE);
  assert.notEqual(info.flags & native.constants.PIPE_SERVER_END, 0, 'the server end');
  assert.equal(native.describe(bytes.client.handle).flags & native.constants.PIPE_SERVER_END, 0, 'the client end');
  // A duplicate adopted as a byte stream is the same pipe, with who is at the other end.
  const adopted = namedPipeFromHandle(native.duplicate(handle));
  assert.equal(adopted.name, null, 'an adopted pipe has no name');
  assert.deepEqual(adopted.peerCredentials(), bytes.server.peerCredentials());
  bytes.client.write('to the adopted end');
  bytes.server.destroy(); // the adopted copy keeps the server end connected
  const [chunk] = await once(adopted, 'data');
  assert.equal(String(chunk), 'to the adopted end');
  adopted.destroy();
  assert.throws(() => adopted.handle, { code: 'ERR_SOCKET_CLOSED' });
  // The message type, the same way.
  const messages = await pair(t, 'message');
  const copy = namedPipeFromHandle(native.duplicate(messages.client.handle), { type: 'message' });
  await copy.send('from the copy');
  assert.equal(String(await messages.server.receive()), 'from the copy');
  await copy.close();
  assert.throws(() => copy.handle, { code: 'ERR_INTERPROCESS_CLOSED' });
});

test('namedPipeFromHandle/FromFd refuse what is not an overlapped pipe of the given type, and leave it open', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const native = requireNative('test').namedPipe;
  const before = native.handleCount();
  const messages = await pair(t, 'message');
  const copy = native.duplicate(messages.server.handle);
  assert.throws(() => namedPipeFromHandle(copy), { code: 'ERR_INVALID_ARG_VALUE', message: /message type/ });
  assert.equal(native.describe(copy).fileType, native.constants.FILE_TYPE_PIPE, 'still open: the caller\'s');
  native.closeHandle(copy);
  assert.throws(() => namedPipeFromHandle(copy, { type: 'message' }), { code: 'EBADF' });
  // A file is not a pipe: refused, and the descriptor stays open.
  const file = path.join(scratchDir(t), 'not-a-pipe');
  fs.writeFileSync(file, 'x');
  const fd = fs.openSync(file, 'r');
  assert.throws(() => namedPipeFromHandle(native.fdHandle(fd)), { code: 'ERR_INVALID_ARG_VALUE', message: /not one/ });
  assert.throws(() => namedPipeFromFd(fd), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.equal(fs.readFileSync(fd, 'utf8'), 'x', 'the descriptor is still open');
  fs.closeSync(fd);
  for (const bad of [0, -4, 1.5, 2 ** 32]) assert.throws(() => namedPipeFromHandle(bad), { code: 'ERR_INVALID_ARG_VALUE' }, String(bad));
  assert.throws(() => namedPipeFromHandle('4' as never), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => namedPipeFromFd(-1), { code: 'ERR_INVALID_ARG_VALUE' });
  messages.server.destroy();
  messages.client.destroy();
  await new Promise((resolve) => setTimeout(resolve, 50));
  await messages.listener.close();
  assert.ok(native.handleCount() <= before + 2, `no handles leaked: ${before} before, ${native.handleCount()} after`);
});

test('spawnWith hands an accepted byte-type connection to a child node.exe, which adopts it with namedPipeFromFd(3)', { skip: windowsOnly, timeout: 60_000 }, async (t) => {
  const { server, client } = await pair(t, 'byte');
  const child = spawnWith(process.execPath, [adopter, 'fd'], { fds: { 3: server }, stdio: ['ignore', 'inherit', 'inherit'] });
  assert.equal(server.destroyed, true, 'our copy is closed once the child has its own');
  client.setEncoding('utf8');
  let text = '';
  client.on('data', (chunk: string) => (text += chunk));
  while (!text.includes('\n')) await once(client, 'data');
  assert.equal(text, `hello ${child.pid} ${process.pid}\n`, 'the child speaks on the pipe, and knows its peer (us, the client)');
  text = '';
  client.write('ping');
  while (text.length < 4) await once(client, 'data');
  assert.equal(text, 'PING');
  client.end();
  assert.equal(await exitOf(child), 0, 'the child saw the end and exited cleanly');
});

for (const type of ['message', 'byte'] as const) {
  test(`shareWith(pid) hands a ${type}-type connection to a running child, which adopts it with namedPipeFromHandle()`, { skip: windowsOnly, timeout: 60_000 }, async (t) => {
    const { server, client } = await pair(t, type);
    const child = spawnFixture(t, 'named-pipe-adopter', ['handle']);
    await child.next('ready');
    const handle = server.shareWith(child.child.pid!);
    assert.ok(Number.isInteger(handle) && handle > 0);
    server.destroy(); // the child's duplicate keeps the connection
    child.send({ type: 'adopt', handle, mode: type });
    const adopted = await child.next<{ credentials: { pid: number }; name: null }>('adopted');
    assert.equal(adopted.credentials.pid, process.pid, 'the child\'s peer is the client: this process');
    assert.equal(adopted.name, null);
    if (type === 'message') {
      const pipe = client as MessagePipe;
      await pipe.send('one');
      assert.equal(String(await pipe.receive()), 'ONE');
      await pipe.send('two');
      assert.equal(String(await pipe.receive()), 'TWO');
      await pipe.close();
    } else {
      const stream = client as NamedPipeStream;
      stream.setEncoding('utf8');
      stream.write('abc');
      const [echo] = await once(stream, 'data');
      assert.equal(echo, 'ABC');
      stream.end();
    }
    await child.next('done');
    assert.throws(() => server.shareWith(child.child.pid!), { code: server instanceof NamedPipeStream ? 'ERR_SOCKET_CLOSED' : 'ERR_INTERPROCESS_CLOSED' });
    assert.throws(() => client.shareWith(0), { code: /ERR_INVALID_ARG_VALUE|ERR_SOCKET_CLOSED|ERR_INTERPROCESS_CLOSED/ });
    child.send({ type: 'exit' });
  });
}

test('shareWith() refuses a bad pid with a typed error', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const { server } = await pair(t, 'message');
  assert.throws(() => server.shareWith(0), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => server.shareWith('1' as never), { code: 'ERR_INVALID_ARG_TYPE' });
  // A pid no process has (pids are multiples of 4 on Windows: 4294967293 is none).
  assert.throws(() => server.shareWith(4294967293), (error: NodeJS.ErrnoException) => error.syscall === 'OpenProcess' && /Cannot share/.test(error.message));
});

test('shareWith() a process that has exited: a typed error, and this end goes on', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const { server, client } = await pair(t, 'message');
  const gone = spawn(process.execPath, ['-e', '']);
  const pid = gone.pid!;
  await once(gone, 'close'); // exited, and its process handle closed
  assert.throws(() => server.shareWith(pid), (error: Error) => error instanceof InterprocessError && typeof error.code === 'string' && error.code !== 'ERR_INTERNAL_ASSERTION' && /Cannot share the pipe with process/.test(error.message));
  await client.send('still here');
  assert.equal(String(await server.receive()), 'still here');
});

test('an adopted handle closed under its MessagePipe (CloseHandle by someone else): send and receive fail typed, destroy() is quiet, the original end goes on', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const native = requireNative('test').namedPipe;
  const { server, client } = await pair(t, 'message');
  const copy = native.duplicate(server.handle);
  const adopted = namedPipeFromHandle(copy, { type: 'message' });
  native.closeHandle(copy);
  const typed = (error: Error) => {
    t.diagnostic(`${error.constructor.name} ${(error as NodeJS.ErrnoException).code}: ${error.message}`);
    return error instanceof InterprocessError && typeof error.code === 'string';
  };
  await assert.rejects(adopted.send('lost'), typed);
  await assert.rejects(adopted.receive(), typed);
  adopted.destroy();
  await client.send('still here');
  assert.equal(String(await server.receive()), 'still here');
});

test('impersonate(fn) on a server end whose client has disconnected: fn runs or a typed error, and the thread impersonates no one after', { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const native = requireNative('test').namedPipe;
  const { server, client } = await pair(t, 'message', {}, { allowImpersonation: true });
  client.destroy();
  await once(client, 'close');
  let inside: unknown = 'not run';
  try {
    inside = server.impersonate(() => native.tokenUser(true));
    t.diagnostic('fn ran (Wine impersonates the server\'s own token, client or not)');
  } catch (error) {
    assert.ok(error instanceof InterprocessError && /Cannot impersonate the client/.test(error.message), String(error));
    t.diagnostic(`refused: ${error.code}`);
  }
  assert.notEqual(inside, null, 'if fn ran, it ran impersonating');
  assert.equal(native.tokenUser(true), null, 'reverted (or never impersonating)');
});

for (const type of ['byte', 'message'] as const) {
  test(`impersonate(fn) (${type} type): fn runs with the client's token on this thread, reverted after, also when fn throws`, { skip: windowsOnly, timeout: 30_000 }, async (t) => {
    const native = requireNative('test').namedPipe;
    const { server, client } = await pair(t, type, {}, { allowImpersonation: true });
    assert.equal(native.tokenUser(true), null, 'the thread impersonates no one before');
    const inside = server.impersonate(() => native.tokenUser(true));
    assert.ok(inside !== null, 'inside fn the thread has an impersonation token');
    assert.match(inside.sid, /^S-1-/);
    assert.equal(native.tokenUser(true), null, 'reverted after');
    const failure = new Error('from fn');
    assert.throws(() => server.impersonate(() => { throw failure; }), failure, 'fn\'s own error, as thrown');
    assert.equal(native.tokenUser(true), null, 'reverted after a throw');
    assert.equal(server.impersonate(() => 42), 42, 'fn\'s result');
    // An async fn cannot hold a per-thread identity across an await: refused before it runs.
    let ran = false;
    assert.throws(() => server.impersonate(async () => { ran = true; }), { code: 'ERR_INVALID_ARG_TYPE', message: /synchronous/ });
    assert.equal(ran, false);
    assert.throws(() => server.impersonate(() => Promise.resolve(1)), { code: 'ERR_INVALID_RETURN_VALUE' });
    assert.equal(native.tokenUser(true), null);
    assert.throws(() => client.impersonate(() => 1), { code: 'ERR_INVALID_STATE', message: /server end/ });
    // Nested, the inner revert would end the outer impersonation: refused, the outer one goes on.
    const nested = server.impersonate(() => {
      assert.throws(() => server.impersonate(() => 1), { code: 'ERR_INVALID_STATE', message: /inside another/ });
      return native.tokenUser(true);
    });
    assert.ok(nested !== null, 'the outer fn still impersonates after the refused inner call');
    assert.equal(native.tokenUser(true), null);
    assert.throws(() => server.impersonate('no' as never), { code: 'ERR_INVALID_ARG_TYPE' });
    server.destroy();
    assert.throws(() => server.impersonate(() => 1), { code: type === 'byte' ? 'ERR_SOCKET_CLOSED' : 'ERR_INTERPROCESS_CLOSED' });
  });
}

test("impersonate(fn) on a client in another process (identification level, the default): fn sees a token", { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  const native = requireNative('test').namedPipe;
  const name = uniqueName();
  await using listener = await listenNamedPipe(name, { type: 'message' });
  const child = spawnFixture(t, 'named-pipe-peer');
  await child.next('ready');
  child.send({ type: 'connect', name, mode: 'message', direction: 'duplex' });
  await child.next('connected');
  const { value: server } = await listener.iterator({ closeOnReturn: false }).next();
  const user = server!.impersonate(() => native.tokenUser(true));
  assert.equal(user?.sid, native.tokenUser(false)!.sid, 'the client runs as our user');
  assert.equal(native.tokenUser(true), null);
  server!.destroy();
  child.send({ type: 'exit' });
});

test("allow 'same-user' reads the client's user from its token: clients of this user pass, in this process and another (listenNamedPipe and listen alike)", { skip: windowsOnly, timeout: 30_000 }, async (t) => {
  // Clients of this user, in this process and in another, are let in through the token check
  // (named-pipe listeners and local sockets alike).
  const name = uniqueName();
  await using listener = await listenNamedPipe(name);
  const connections = listener.iterator({ closeOnReturn: false });
  const child = spawnFixture(t, 'named-pipe-peer');
  await child.next('ready');
  child.send({ type: 'connect', name, mode: 'byte', direction: 'duplex' });
  const { pid } = await child.next<{ pid: number }>('connected');
  const accepted = (await connections.next()).value!;
  assert.equal(accepted.peerCredentials().pid, pid);
  assert.equal(listener.refused, 0);
  accepted.destroy();
  child.send({ type: 'exit' });
  const local = uniqueName();
  await using socketListener = await listen(nsName(local));
  const own = createConnection(nsName(local));
  const [socket] = await once(socketListener, 'connection');
  assert.equal(socketListener.refused, 0);
  socket.destroy();
  own.destroy();
});

test('the same-user decision on Windows SIDs (the part Wine cannot show: it runs every process as one user)', () => {
  const own = { sid: 'S-1-5-21-1-2-3-1001' };
  assert.equal(isSameUser({ sid: own.sid, admin: false }, own), true, 'this user');
  assert.equal(isSameUser({ sid: 'S-1-5-18', admin: false }, own), true, 'LocalSystem, as root on Unix');
  assert.equal(isSameUser({ sid: 'S-1-5-21-1-2-3-1002', admin: true }, own), true, 'an Administrators member (the default DACL lets it in)');
  assert.equal(isSameUser({ sid: 'S-1-5-21-1-2-3-1002', admin: false }, own), false, 'another user');
  assert.equal(isSameUser({ sid: 'S-1-5-7', admin: false }, own), false, 'anonymous');
});

test('createConnection() on Windows is our pipe end: peerCredentials() gives the server\'s pid', { skip: windowsOnly, timeout: 30_000 }, async () => {
  const name = uniqueName();
  await using listener = await listen(nsName(name));
  const socket = createConnection(nsName(name));
  await once(socket, 'connect');
  assert.deepEqual(socket.peerCredentials(), { pid: process.pid, uid: null, gid: null });
  const [accepted] = await once(listener, 'connection');
  socket.write('over createConnection');
  const [chunk] = await once(accepted, 'data');
  assert.equal(String(chunk), 'over createConnection');
  // Nothing there: the same 'error' event as before, ENOENT.
  const missing = createConnection(nsName(uniqueName()));
  const [error] = await once(missing, 'error');
  assert.equal((error as NodeJS.ErrnoException).code, 'ENOENT');
  socket.destroy();
  accepted.destroy();
});

test('off Windows, the handle exports fail with ERR_INTERPROCESS_UNSUPPORTED', { skip: windows && 'this is Windows' }, () => {
  assert.throws(() => namedPipeFromHandle(4), { code: 'ERR_INTERPROCESS_UNSUPPORTED', message: /Windows/ });
  assert.throws(() => namedPipeFromHandle(4, { type: 'message' }), { code: 'ERR_INTERPROCESS_UNSUPPORTED' });
  assert.throws(() => namedPipeFromFd(3), { code: 'ERR_INTERPROCESS_UNSUPPORTED' });
  // Arguments are checked first, on every OS.
  assert.throws(() => namedPipeFromHandle(-1), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => namedPipeFromFd(3, { type: 'stream' as never }), { code: 'ERR_INVALID_ARG_VALUE' });
});
