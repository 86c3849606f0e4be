// Who may connect: the `allow` rule of every listener, decided from the kernel's peer credentials
// before anything of the peer is read. As root, with `nobody` (uid 65534, no supplementary
// groups: libuv clears them when it sets the uid) as the other user, across real processes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Channel, InterprocessError, type LocalSocket, type PeerCredentials, bindDatagram, listen, listenUnix, nsName, serveRpc } from 'interprocess';
import { scratchDir, spawnFixture, uniqueName } from '../helpers.js';

const NOBODY = 65534;
const asRoot = process.platform === 'linux' && process.getuid?.() === 0;
const needsRoot = !asRoot && 'these tests run a peer as another user (nobody), which needs root on Linux';
const linuxOnly = process.platform !== 'linux' && 'abstract names and SCM_CREDENTIALS are Linux only';

interface Result {
  uid: number;
  connected?: boolean;
  data?: string;
  reply?: unknown;
  message?: unknown;
  error?: string;
  sent?: boolean;
}

/** Runs the peer-as fixture, as nobody unless `as` says otherwise, and returns its report. */
async function peer(t: import('node:test').TestContext, how: string, kind: 'ns' | 'fs', name: string, as: 'nobody' | 'me' = 'nobody', codec?: string): Promise<Result> {
  const options = as === 'nobody' ? { uid: NOBODY, gid: NOBODY } : {};
  const child = spawnFixture(t, 'peer-as', [how, kind, name, ...(codec ? [codec] : [])], process.env, options);
  return child.next<Result>('result');
}

/** A scratch directory every user may enter (mkdtemp makes it 0700). */
function openDir(t: import('node:test').TestContext): string {
  const dir = scratchDir(t);
  fs.chmodSync(dir, 0o755);
  return dir;
}

function watch(listener: import('node:events').EventEmitter) {
  const seen = { connections: 0, refused: [] as Array<PeerCredentials | null> };
  listener.on('connection', (conn: LocalSocket) => {
    seen.connections++;
    conn.on('error', () => {});
    conn.end('welcome\n');
  });
  listener.on('refused', (credentials: PeerCredentials | null) => seen.refused.push(credentials));
  return seen;
}

test('a namespaced listener at the defaults refuses another user, before its handler runs, and lets this user in', { skip: needsRoot || linuxOnly, timeout: 30_000 }, async (t) => {
  const name = uniqueName('access');
  await using listener = await listen(nsName(name));
  const seen = watch(listener);
  const nobody = await peer(t, 'connect', 'ns', name);
  assert.equal(nobody.uid, NOBODY);
  assert.equal(nobody.data, '', 'the refused peer got nothing');
  assert.equal(seen.connections, 0, "the 'connection' handler never ran");
  assert.equal(listener.refused, 1);
  assert.equal(seen.refused.length, 1);
  assert.equal(seen.refused[0]!.uid, NOBODY);
  assert.equal(typeof seen.refused[0]!.pid, 'number');
  // This user (root here) is let in.
  const me = await peer(t, 'connect', 'ns', name, 'me');
  assert.equal(me.data, 'welcome\n');
  assert.equal(seen.connections, 1);
  assert.equal(listener.refused, 1);
});

test("allow: 'any', { uids }, { gids } and a predicate let the other user in where they say so", { skip: needsRoot || linuxOnly, timeout: 60_000 }, async (t) => {
  for (const allow of ['any', { uids: [NOBODY] }, { gids: [NOBODY] }, (peer: PeerCredentials) => peer.uid === NOBODY] as const) {
    const name = uniqueName('access');
    await using listener = await listen(nsName(name), { allow });
    const seen = watch(listener);
    const nobody = await peer(t, 'connect', 'ns', name);
    assert.equal(nobody.data, 'welcome\n', `nobody is let in under ${typeof allow === 'function' ? 'a predicate' : JSON.stringify(allow)}`);
    assert.equal(listener.refused, 0);
    assert.equal(seen.connections, 1);
  }
  // A list that names someone else, and a predicate that says no or throws: refused.
  const thrown = new Error('no idea');
  for (const allow of [{ uids: [NOBODY - 1] }, () => false, () => { throw thrown; }]) {
    const name = uniqueName('access');
    await using listener = await listen(nsName(name), { allow });
    const errors: unknown[] = [];
    listener.on('refused', (_credentials: unknown, error?: unknown) => errors.push(error));
    const seen = watch(listener);
    const nobody = await peer(t, 'connect', 'ns', name);
    assert.equal(nobody.data, '');
    assert.equal(seen.connections, 0);
    assert.equal(listener.refused, 1);
    assert.deepEqual(errors, [typeof allow === 'function' && allow.length === 0 && errors[0] === thrown ? thrown : undefined]);
  }
});

test('a refused peer with no refused listener costs nothing and throws nothing; the listener goes on', { skip: needsRoot || linuxOnly, timeout: 30_000 }, async (t) => {
  const name = uniqueName('access');
  await using listener = await listen(nsName(name));
  let connections = 0;
  listener.on('connection', (conn) => {
    connections++;
    conn.end('ok\n');
  });
  const results = await Promise.all([1, 2, 3].map(() => peer(t, 'connect', 'ns', name)));
  for (const r of results) assert.equal(r.data, '');
  assert.equal(listener.refused, 3);
  assert.equal((await peer(t, 'connect', 'ns', name, 'me')).data, 'ok\n');
  assert.equal(connections, 1);
});

test('serveRpc at the defaults: the other user is refused and its handler runs 0 times; allowed where the rule says', { skip: needsRoot || linuxOnly, timeout: 30_000 }, async (t) => {
  let calls = 0;
  const serve = async (options: Parameters<typeof serveRpc>[1] = {}) => {
    const name = uniqueName('rpc-access');
    const server = await serveRpc(nsName(name), options);
    server.handle('whoami', (body) => {
      calls++;
      return { seen: body };
    });
    t.after(() => server.close());
    return { name, server };
  };
  const closed = await serve();
  const nobody = await peer(t, 'rpc', 'ns', closed.name);
  assert.equal(nobody.reply, undefined);
  assert.ok(nobody.error, 'the request failed');
  assert.equal(calls, 0, 'the handler never ran for the refused peer');
  assert.equal(closed.server.listener.refused, 1);
  assert.equal(closed.server.channels.size, 0);
  const me = await peer(t, 'rpc', 'ns', closed.name, 'me');
  assert.deepEqual(me.reply, { seen: { from: 0 } });
  assert.equal(calls, 1);

  const open = await serve({ allow: { uids: [NOBODY] } });
  assert.deepEqual((await peer(t, 'rpc', 'ns', open.name)).reply, { seen: { from: NOBODY } });
  assert.equal(calls, 2);
});

test('socket files: mode 0600 by default (the kernel refuses other users at connect), the rule on top', { skip: needsRoot, timeout: 30_000 }, async (t) => {
  const dir = openDir(t);
  const socketPath = path.join(dir, 'default.sock');
  await using listener = await listen(socketPath);
  assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
  watch(listener);
  const nobody = await peer(t, 'connect', 'fs', socketPath);
  assert.deepEqual([nobody.connected, nobody.error], [false, 'EACCES']);
  assert.equal(listener.refused, 0, 'refused by the kernel, before any accept');
  // A wider mode with the default rule: the peer reaches the socket, the rule refuses it.
  const widePath = path.join(dir, 'wide.sock');
  await using wide = await listen(widePath, { mode: 0o666 });
  const seen = watch(wide);
  assert.equal((await peer(t, 'connect', 'fs', widePath)).data, '');
  assert.deepEqual([wide.refused, seen.connections], [1, 0]);
  // allow: 'any' keeps the umask's mode (as before) and lets in whoever the mode lets in.
  const anyPath = path.join(dir, 'any.sock');
  await using any = await listen(anyPath, { allow: 'any', mode: 0o666 });
  watch(any);
  assert.equal((await peer(t, 'connect', 'fs', anyPath)).data, 'welcome\n');
});

test('listenUnix seqpacket at the defaults refuses another user; allow lets it in', { skip: needsRoot || linuxOnly, timeout: 30_000 }, async (t) => {
  const name = uniqueName('seq-access');
  await using listener = await listenUnix(nsName(name), { type: 'seqpacket' });
  let connections = 0;
  listener.on('connection', (conn) => {
    connections++;
    void conn.send('welcome');
  });
  const refused: Array<PeerCredentials | null> = [];
  listener.on('refused', (credentials) => refused.push(credentials));
  const nobody = await peer(t, 'seqpacket', 'ns', name);
  assert.notEqual(nobody.message, 'welcome');
  assert.deepEqual([connections, listener.refused, refused[0]?.uid], [0, 1, NOBODY]);

  const other = uniqueName('seq-access');
  await using open = await listenUnix(nsName(other), { type: 'seqpacket', allow: { uids: [NOBODY] } });
  open.on('connection', (conn) => void conn.send('welcome'));
  assert.equal((await peer(t, 'seqpacket', 'ns', other)).message, 'welcome');
});

test('datagrams with credentials: messages from another user are dropped at the defaults, counted and reported', { skip: needsRoot || linuxOnly, timeout: 30_000 }, async (t) => {
  const name = uniqueName('dgram-access');
  await using receiver = await bindDatagram(nsName(name), { passCredentials: true });
  const refused: Array<PeerCredentials | null> = [];
  receiver.on('refused', (credentials) => refused.push(credentials));
  const received: string[] = [];
  receiver.on('message', (message) => received.push(message.data.toString()));
  assert.equal((await peer(t, 'datagram', 'ns', name)).sent, true);
  assert.equal((await peer(t, 'datagram', 'ns', name, 'me')).sent, true);
  const deadline = Date.now() + 10_000;
  while (received.length + refused.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(received, ['from 0']);
  assert.deepEqual([receiver.refused, refused[0]?.uid], [1, NOBODY]);

  const other = uniqueName('dgram-access');
  await using open = await bindDatagram(nsName(other), { passCredentials: true, allow: 'any' });
  const got = new Promise<string>((resolve) => open.once('message', (m) => resolve(m.data.toString())));
  await peer(t, 'datagram', 'ns', other);
  assert.equal(await got, `from ${NOBODY}`);
  // A rule needs the credentials it is decided from.
  await assert.rejects(bindDatagram(nsName(uniqueName()), { allow: { uids: [1] } }), { code: 'ERR_INVALID_ARG_VALUE', message: /passCredentials/ });
});

test('bad allow values fail before anything is bound', async () => {
  for (const allow of ['nobody', 42, null, [1], { uids: 'x' }, { uids: [-1] }, { users: [1] }]) {
    await assert.rejects(listen(nsName(uniqueName()), { allow: allow as never }), (error: InterprocessError) => /^ERR_INVALID_ARG_(TYPE|VALUE)$/.test(error.code) || error.code === 'ERR_INTERPROCESS_UNSUPPORTED');
  }
});

test('the v8 codec is refused on a listener that lets other users in, unless trustPeers', { skip: linuxOnly, timeout: 30_000 }, async (t) => {
  await assert.rejects(serveRpc(nsName(uniqueName()), { codec: 'v8', allow: 'any' }), { code: 'ERR_INTERPROCESS_UNTRUSTED_CODEC', message: /trustPeers/ });
  await assert.rejects(serveRpc(nsName(uniqueName()), { codec: 'v8', allow: { gids: [NOBODY] } }), { code: 'ERR_INTERPROCESS_UNTRUSTED_CODEC' });
  await assert.rejects(serveRpc(nsName(uniqueName()), { codec: 'v8', allow: () => true }), { code: 'ERR_INTERPROCESS_UNTRUSTED_CODEC' });
  // Accepted: the default rule, a list of only our own uid, or an explicit opt-in.
  for (const options of [{}, { allow: { uids: [process.getuid!()] } }, { allow: 'any' as const, trustPeers: true }]) {
    const name = uniqueName('v8');
    await using server = await serveRpc(nsName(name), { codec: 'v8', ...options });
    server.handle('whoami', (body) => ({ body, at: new Date(0) })); // a Date: v8, not json (the fixture reports it as text)
    const reply = await peer(t, 'rpc', 'ns', name, 'me', 'v8');
    assert.deepEqual(reply.reply, { body: { from: process.getuid!() }, at: new Date(0).toISOString() }, `v8 across processes with ${JSON.stringify(options)}`);
  }
  // A Channel made on a connection accepted under 'any' refuses v8 too.
  const name = uniqueName('v8');
  await using listener = await listen(nsName(name), { allow: 'any' });
  const made = new Promise<unknown>((resolve) =>
    listener.once('connection', (conn) => {
      try {
        resolve(new Channel(conn, { codec: 'v8' }));
      } catch (error) {
        resolve(error);
      } finally {
        conn.destroy();
      }
    }),
  );
  const client = peer(t, 'connect', 'ns', name, 'me');
  assert.equal(((await made) as InterprocessError).code, 'ERR_INTERPROCESS_UNTRUSTED_CODEC');
  await client;
});
