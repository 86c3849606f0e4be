// What every listener shares (src/listener.ts), checked on each kind this platform has: one
// memoised close() and one 'close', leaving a loop early (closes, unless closeOnReturn: false,
// which keeps later connections for the next loop), ref/unref returning the listener, and the
// '@NAME' string rule. Also: listenUnix()'s default type, and peer credentials after close.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type LocalSocket, type LocalSocketListener, type UnixListener, type UnixSocket, connect, connectUnix, listen, listenUnix, nsName } from 'interprocess';
import { scratchDir, spawnFixture, testSocketPath, uniqueName } from '../helpers.js';

const windows = process.platform === 'win32';

interface Kind {
  name: string;
  skip: false | string;
  listen(name: string): Promise<LocalSocketListener | UnixListener>;
  connect(name: string): Promise<LocalSocket | UnixSocket>;
}

const kinds: Kind[] = [
  { name: 'LocalSocketListener', skip: false, listen: (n) => listen(n), connect: (n) => connect(n) },
  { name: 'UnixListener (stream)', skip: (windows && 'Windows has no Unix socket types besides local sockets'), listen: (n) => listenUnix(n), connect: (n) => connectUnix(n) },
  { name: 'UnixListener (seqpacket)', skip: (windows && 'Windows has no Unix socket types besides local sockets'), listen: (n) => listenUnix(n, { type: 'seqpacket' }), connect: (n) => connectUnix(n, { type: 'seqpacket' }) },
];

function end(connection: LocalSocket | UnixSocket): void {
  if ('destroy' in connection && typeof connection.destroy === 'function') connection.destroy();
  else void (connection as UnixSocket).close();
}

for (const kind of kinds) {
  test(`${kind.name}: close() is memoised (the same promise), 'close' is emitted once, listening turns false`, { skip: kind.skip }, async (t) => {
    const listener = await kind.listen(testSocketPath(t, 'memo.sock'));
    assert.equal(listener.listening, true);
    let closes = 0;
    listener.on('close', () => closes++);
    const first = listener.close();
    assert.equal(listener.listening, false);
    const second = listener.close();
    assert.equal(second, first, 'a second close() returns the same promise');
    await first;
    assert.equal(listener.close(), first, 'and so does one after it resolved');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closes, 1);
    assert.equal(listener[Symbol.asyncDispose](), first);
  });

  test(`${kind.name}: leaving a for-await loop closes the listener; iterator({ closeOnReturn: false }) leaves it open and keeps later connections for the next loop`, { skip: kind.skip, timeout: 30_000 }, async (t) => {
    const socketPath = testSocketPath(t, 'loop.sock');
    const listener = await kind.listen(socketPath);
    t.after(() => listener.close());
    const clients: Array<LocalSocket | UnixSocket> = [];
    t.after(() => clients.forEach(end));

    clients.push(await kind.connect(socketPath));
    for await (const connection of listener.iterator({ closeOnReturn: false })) {
      end(connection);
      break;
    }
    assert.equal(listener.listening, true, 'closeOnReturn: false leaves it open');
    // Two connections while nobody iterates: both wait for the next loop, in order.
    clients.push(await kind.connect(socketPath), await kind.connect(socketPath));
    let taken = 0;
    for await (const connection of listener.iterator({ closeOnReturn: false })) {
      end(connection);
      if (++taken === 2) break;
    }
    assert.equal(taken, 2);
    assert.equal(listener.listening, true);

    clients.push(await kind.connect(socketPath));
    const closed = once(listener, 'close');
    for await (const connection of listener) {
      end(connection);
      break; // the default: Node's rule, leaving the loop closes
    }
    assert.equal(listener.listening, false);
    await closed;
  });

  test(`${kind.name}: ref() and unref() return the listener`, { skip: kind.skip, timeout: 30_000 }, async (t) => {
    const listener = await kind.listen(testSocketPath(t, 'ref.sock'));
    t.after(() => listener.close());
    assert.equal(listener.unref(), listener);
    assert.equal(listener.ref(), listener);
  });
}

test("a string '@NAME' is the namespaced name nsName('NAME') for listen(), connect() and listenUnix(); './@NAME' is a file", { timeout: 30_000 }, async (t) => {
  const raw = uniqueName('at');
  const listener = await listen(`@${raw}`);
  t.after(() => listener.close());
  assert.equal(listener.name.kind, 'namespaced');
  assert.equal(listener.name.address, nsName(raw).address);
  const client = await connect(nsName(raw));
  client.destroy();
  const again = await connect(`@${raw}`);
  assert.equal(String(again.name), String(nsName(raw)));
  again.destroy();

  if (!windows) {
    const unixRaw = uniqueName('at-unix');
    const unix = await listenUnix(`@${unixRaw}`);
    t.after(() => unix.close());
    assert.equal(unix.name.address, nsName(unixRaw).address);
    const socket = await connect(nsName(unixRaw)); // a local-socket client of the stream listener
    socket.destroy();

    const dir = scratchDir(t);
    const cwd = process.cwd();
    process.chdir(dir);
    t.after(() => process.chdir(cwd));
    const file = await listen(`./@${raw}`);
    t.after(() => file.close());
    assert.equal(file.name.kind, 'filesystem');
    assert.ok(fs.lstatSync(path.join(dir, `@${raw}`)).isSocket());
  }
});

test('listenUnix(name) listens for stream connections by default', { timeout: 30_000, skip: (windows && 'Windows has no Unix socket types besides local sockets') }, async (t) => {
  const socketPath = testSocketPath(t, 'default.sock');
  const listener = await listenUnix(socketPath);
  t.after(() => listener.close());
  assert.equal(listener.type, 'stream');
  const client = await connect(socketPath); // a Node stream client gets in
  t.after(() => client.destroy());
  const accepted = (await listener.iterator({ closeOnReturn: false }).next()).value as UnixSocket;
  assert.equal(accepted.type, 'stream');
  await accepted.close();
});

test('peerCredentials() answers after close, on both ends, without having been asked while open', { skip: (windows && 'Windows has no Unix socket types besides local sockets'), timeout: 30_000 }, async (t) => {
  const name = uniqueName('creds');
  const server = spawnFixture(t, 'echo-server', ['ns', name, JSON.stringify({})]);
  const { pid } = await server.next<{ pid: number }>('listening');
  const client = await connect(nsName(name));
  client.destroy();
  await once(client, 'close');
  assert.equal(client.peerCredentials().pid, pid, 'the client: the server process');
  assert.equal(client.peerCredentials().uid, process.getuid!());

  const listener = await listen(testSocketPath(t, 'creds.sock'));
  t.after(() => listener.close());
  const other = await connect(listener.name);
  const accepted = (await listener.iterator({ closeOnReturn: false }).next()).value as LocalSocket;
  other.destroy();
  accepted.destroy();
  await once(accepted, 'close');
  assert.equal(accepted.peerCredentials().pid, process.pid, 'the accepted end: the client process');
});

test('sending a closed UnixListener fails with ERR_INTERPROCESS_CLOSED; an open one travels', { skip: windows && 'Windows has no descriptor passing', timeout: 30_000 }, async (t) => {
  const { unixSocketPair } = await import('interprocess');
  const [a, b] = unixSocketPair({ type: 'seqpacket' });
  t.after(() => Promise.all([a.close(), b.close()]));
  const listener = await listenUnix(testSocketPath(t, 'sent.sock'));
  await a.send('open', { fds: [listener] });
  const message = await b.receive();
  assert.equal(message?.fds.length, 1);
  message!.fds.forEach((d) => d.close());
  await listener.close();
  await assert.rejects(Promise.resolve().then(() => a.send('closed', { fds: [listener] })), { code: 'ERR_INTERPROCESS_CLOSED' });
});
