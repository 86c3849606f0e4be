// The authkey handshake of Python's multiprocessing.connection: with Python itself (its Listener
// and Client, and by-hand peers of each form, legacy HMAC-MD5 and {sha256}), with Node peers over
// local sockets, TCP and TLS, and against peers that misbehave.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Channel, type InterprocessError, type RpcServerOptions, authenticate, connect, connectRpc, listen, serveRpc, unixSocketPair } from 'interprocess';
import { openFds, scratchDir, spawnFixture, testSocketPath } from '../helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FIXTURE = path.join(root, 'test', 'fixtures', 'mp_auth.py');
const KEY = 'a shared secret of the tests';
const noPython = process.platform === 'win32' && "needs a Windows Python (its AF_PIPE), which the Wine CI does not have";

/** python3, and any other Python 3 on PATH whose handshake form may differ (3.12+ name their digest). */
const pythons = ['python3', 'python3.12', 'python3.13', 'python3.14'].filter((python, i) => i === 0 || (process.platform !== 'win32' && spawnSync(python, ['-c', 'import sys; assert sys.version_info >= (3, 12)'], { stdio: 'ignore' }).status === 0));

interface PythonPeer {
  child: ChildProcess;
  /** Resolves once the output holds a line matching `pattern`. */
  line(pattern: RegExp): Promise<void>;
  /** All its output, once it has exited. */
  output: Promise<string>;
}

/** Runs test/fixtures/mp_auth.py (see its usage) with `python`. */
function pythonPeer(t: TestContext, python: string, role: 'listen' | 'connect' | 'rpc', impl: 'stdlib' | 'legacy' | 'modern', socketPath: string, key: string): PythonPeer {
  const child = spawn(python, [FIXTURE, role, impl, socketPath, key], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  const waiting: Array<{ pattern: RegExp; resolve: () => void }> = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const w of waiting.splice(0)) {
      if (w.pattern.test(out)) w.resolve();
      else waiting.push(w);
    }
  });
  const exited = once(child, 'close'); // after stdout has ended: all its output is in
  return {
    child,
    line: (pattern) =>
      pattern.test(out)
        ? Promise.resolve()
        : Promise.race([new Promise<void>((resolve) => waiting.push({ pattern, resolve })), exited.then(() => Promise.reject(new Error(`python exited without printing ${pattern}; it printed:\n${out}`)))]),
    output: exited.then(() => out),
  };
}

/** A serveRpc with an authkey on a fresh socket file, counting its handler's runs and its refusals. */
async function authServer(t: TestContext, options: RpcServerOptions<number[] | number> = {}) {
  const socketPath = testSocketPath(t, 'auth.sock');
  const server = await serveRpc<number[] | number>(socketPath, { authkey: KEY, ...options });
  t.after(() => server.close());
  const seen = { runs: 0, failures: [] as InterprocessError[] };
  server.handle('add', (body) => {
    seen.runs++;
    const [a, b] = body as number[];
    return a! + b!;
  });
  server.on('authFailure', (error: InterprocessError) => seen.failures.push(error));
  return { server, socketPath, seen };
}

/** Resolves once `predicate` holds, checking every 10 ms (for events of the other process). */
async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 10));
}

const impls = [...pythons.map((python) => ({ python, impl: 'stdlib' as const })), { python: 'python3', impl: 'legacy' as const }, { python: 'python3', impl: 'modern' as const }];

for (const { python, impl } of impls) {
  const label = impl === 'stdlib' ? `${python}'s multiprocessing.connection` : `a by-hand ${impl === 'legacy' ? 'legacy (HMAC-MD5, Python <= 3.11)' : 'modern ({sha256}, Python >= 3.12)'} peer`;

  test(`${label} as Client of our serveRpc: the right key gets a reply; a wrong key is refused on both sides and no handler runs`, { skip: noPython, timeout: 60_000 }, async (t) => {
    const { server, socketPath, seen } = await authServer(t);
    const good = pythonPeer(t, python, 'rpc', impl, socketPath, KEY);
    const goodOut = await good.output;
    assert.match(goodOut, /^reply: kind 2 id 7 body 5$/m);
    // Our challenge is the modern one: {sha256} and 40 random bytes.
    if (impl !== 'stdlib') assert.match(goodOut, /^form: sha256 48$/m);
    assert.equal(seen.runs, 1);

    const bad = pythonPeer(t, python, 'rpc', impl, socketPath, 'not the key');
    assert.match(await bad.output, /^AuthenticationError: digest sent was rejected$/m);
    await until(() => seen.failures.length === 1);
    assert.equal(seen.failures[0]!.code, 'ERR_INTERPROCESS_AUTH');
    assert.match(seen.failures[0]!.message, /does not hold the same authkey/);
    assert.equal(server.authFailures, 1);
    assert.equal(seen.runs, 1, 'the refused peer reached no handler');
    assert.equal(server.channels.size, 0);
  });

  test(`${label} as Listener, our client: the right key makes a channel; a wrong key is refused on both sides`, { skip: noPython, timeout: 60_000 }, async (t) => {
    const dir = scratchDir(t);
    const good = pythonPeer(t, python, 'listen', impl, path.join(dir, 'good.sock'), KEY);
    await good.line(/^ready$/m);
    const socket = await connect(path.join(dir, 'good.sock'));
    await authenticate(socket, { authkey: KEY, role: 'client' });
    const channel = new Channel<Buffer>(socket, { codec: 'raw' });
    await channel.send(Buffer.from('one'));
    await channel.send(Buffer.from('two'));
    const replies: string[] = [];
    for await (const reply of channel) if (replies.push(String(reply)) === 2) break;
    assert.deepEqual(replies, ['py:one', 'py:two']);
    assert.match(await good.output, /^echoed 2$/m);

    const bad = pythonPeer(t, python, 'listen', impl, path.join(dir, 'bad.sock'), 'not the key');
    await bad.line(/^ready$/m);
    const refused = await connect(path.join(dir, 'bad.sock'));
    await assert.rejects(authenticate(refused, { authkey: KEY, role: 'client' }), (error: InterprocessError) => {
      assert.equal(error.code, 'ERR_INTERPROCESS_AUTH');
      assert.match(error.message, /refused our answer/);
      return true;
    });
    assert.equal(refused.destroyed, true);
    assert.match(await bad.output, /^AuthenticationError: digest received was wrong$/m);
  });

  test(`${label} as Client of our listener and a Channel: messages both ways after the handshake`, { skip: noPython, timeout: 60_000 }, async (t) => {
    const socketPath = testSocketPath(t, 'plain.sock');
    await using listener = await listen(socketPath);
    const got: string[] = [];
    listener.on('connection', async (socket) => {
      await authenticate(socket, { authkey: KEY, role: 'server' });
      const channel = new Channel<Buffer>(socket, { codec: 'raw' });
      for await (const message of channel) {
        got.push(String(message));
        await channel.send(Buffer.from(`node got: ${message}`));
      }
    });
    const peer = pythonPeer(t, python, 'connect', impl, socketPath, KEY);
    assert.match(await peer.output, /^reply: node got: hello from python$/m);
    assert.deepEqual(got, ['hello from python']);
  });
}

test('authLegacy: false refuses HMAC-MD5 both ways, and still takes a modern peer; authDigest md5 sends the legacy challenge', { skip: noPython, timeout: 60_000 }, async (t) => {
  // A legacy client: it answers our {sha256} challenge with a bare HMAC-MD5.
  const strict = await authServer(t, { authLegacy: false });
  assert.match(await pythonPeer(t, 'python3', 'rpc', 'legacy', strict.socketPath, KEY).output, /^AuthenticationError: digest sent was rejected$/m);
  await until(() => strict.seen.failures.length === 1);
  assert.match(strict.seen.failures[0]!.message, /HMAC-MD5.*authLegacy: false/);
  assert.equal(strict.seen.runs, 0);
  assert.match(await pythonPeer(t, 'python3', 'rpc', 'modern', strict.socketPath, KEY).output, /^reply: kind 2 id 7 body 5$/m);
  assert.equal(strict.seen.runs, 1);

  // A legacy listener: we refuse to answer its MD5 challenge.
  const dir = scratchDir(t);
  const legacy = pythonPeer(t, 'python3', 'listen', 'legacy', path.join(dir, 'legacy.sock'), KEY);
  await legacy.line(/^ready$/m);
  const socket = await connect(path.join(dir, 'legacy.sock'));
  await assert.rejects(authenticate(socket, { authkey: KEY, role: 'client', authLegacy: false }), { code: 'ERR_INTERPROCESS_AUTH', message: /asks for HMAC-MD5/ });
  assert.match(await legacy.output, /^EOFError/m);

  // authDigest: 'md5': the legacy challenge (20 bytes, no name), which either form answers.
  const old = await authServer(t, { authDigest: 'md5' });
  for (const impl of ['legacy', 'modern'] as const) {
    const out = await pythonPeer(t, 'python3', 'rpc', impl, old.socketPath, KEY).output;
    assert.match(out, /^form: legacy 20$/m);
    assert.match(out, /^reply: kind 2 id 7 body 5$/m);
  }
});

// ---- Node peers, and peers that misbehave ----

/** The frames of a raw socket, one at a time (a peer written by hand). */
function frames(socket: net.Socket): () => Promise<Buffer> {
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  let ended = false;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    wake?.();
  });
  socket.on('close', () => {
    ended = true;
    wake?.();
  });
  return async () => {
    for (;;) {
      if (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
        const length = buffered.readUInt32BE(0);
        const frame = buffered.subarray(4, 4 + length);
        buffered = buffered.subarray(4 + length);
        return frame;
      }
      if (ended) throw new Error('closed');
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
    }
  };
}

function frame(payload: Buffer | string): Buffer {
  const body = Buffer.from(payload);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

/** The named {sha256} answer to a challenge frame, as Python 3.12 makes it. */
function answerTo(challenge: Buffer, key = KEY): Buffer {
  const message = challenge.subarray('#CHALLENGE#'.length);
  return Buffer.concat([Buffer.from('{sha256}'), createHmac('sha256', key).update(message).digest()]);
}

test('Node to Node: connectRpc and serveRpc with an authkey; a client without the key, or without any, never reaches a handler', { timeout: 60_000 }, async (t) => {
  const { server, socketPath, seen } = await authServer(t);
  const client = await connectRpc<number[] | number>(socketPath, { authkey: KEY });
  assert.equal(await client.request('add', [20, 22]), 42);
  await client.close();

  await assert.rejects(connectRpc(socketPath, { authkey: 'wrong' }), { code: 'ERR_INTERPROCESS_AUTH', message: /refused our answer/ });
  // No authkey at all: its request is taken for an answer and refused; its channel then fails.
  const bare = await connectRpc(socketPath);
  await assert.rejects(bare.request('add', [1, 2]), (error: InterprocessError) => ['ERR_INTERPROCESS_DECODE', 'ERR_INTERPROCESS_CLOSED', 'ECONNRESET'].includes(error.code));
  await until(() => seen.failures.length === 2);
  assert.deepEqual(seen.failures.map((e) => e.code), ['ERR_INTERPROCESS_AUTH', 'ERR_INTERPROCESS_AUTH']);
  assert.equal(seen.runs, 1);
  assert.equal(server.authFailures, 2);

  // A server without an authkey: the client's handshake waits for a challenge that never comes.
  const plainPath = testSocketPath(t, 'plain.sock');
  const plain = await serveRpc(plainPath);
  t.after(() => plain.close());
  await assert.rejects(connectRpc(plainPath, { authkey: KEY, authTimeout: 200 }), { code: 'ETIMEDOUT' });
});

test('a silent peer is cut off after authTimeout while other clients authenticate; descriptors are not leaked', { timeout: 60_000 }, async (t) => {
  const { socketPath, seen } = await authServer(t, { authTimeout: 300 });
  const before = openFds();
  const silent = net.connect(socketPath);
  await once(silent, 'connect');
  const readSilent = frames(silent);
  assert.match(String(await readSilent()), /^#CHALLENGE#\{sha256\}/);
  // Meanwhile a good client is served at once.
  const good = await connectRpc<number[] | number>(socketPath, { authkey: KEY });
  assert.equal(await good.request('add', [1, 1]), 2);
  await good.close();
  await once(silent, 'close');
  await until(() => seen.failures.length === 1);
  assert.equal(seen.failures[0]!.code, 'ETIMEDOUT');
  assert.equal(seen.runs, 1);
  await until(() => openFds() === before);
});

test('hostile handshakes: an oversized length, a replayed answer, a truncated frame; each refused at once with nothing run', { timeout: 60_000 }, async (t) => {
  const { socketPath, seen } = await authServer(t);

  // A length of 4 GiB - 1 after the challenge: refused without waiting for (or making room for) it.
  const huge = net.connect(socketPath);
  const readHuge = frames(huge);
  await readHuge();
  huge.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  await once(huge, 'close');
  await until(() => seen.failures.length === 1);
  assert.match(seen.failures[0]!.message, /over 2 GiB; at most 256/);

  // A correct answer, replayed on another connection: each challenge is fresh, so it is wrong there.
  const first = net.connect(socketPath);
  const readFirst = frames(first);
  const answer = answerTo(await readFirst());
  first.write(frame(answer));
  assert.equal(String(await readFirst()), '#WELCOME#');
  first.destroy();
  const replay = net.connect(socketPath);
  const readReplay = frames(replay);
  await readReplay();
  replay.write(frame(answer));
  assert.equal(String(await readReplay()), '#FAILURE#');
  await once(replay, 'close');
  await until(() => seen.failures.length === 3); // the first one left mid-handshake, the replay was wrong
  assert.ok(seen.failures.some((e) => /does not hold the same authkey/.test(e.message)));

  // Half a header, then the end.
  const cut = net.connect(socketPath);
  await frames(cut)();
  cut.end(Buffer.from([0, 0]));
  await once(cut, 'close');
  await until(() => seen.failures.length === 4);
  assert.match(seen.failures[3]!.message, /in the middle of a handshake message/);
  assert.equal(seen.runs, 0);
});

test('what the peer sends right after its #WELCOME#, in the same write, reaches the channel intact', { timeout: 60_000 }, async (t) => {
  const { socketPath, seen } = await authServer(t);
  const socket = net.connect(socketPath);
  const read = frames(socket);
  socket.write(frame(answerTo(await read())));
  assert.equal(String(await read()), '#WELCOME#');
  // Our challenge to the server, which must answer it with the key.
  const nonce = Buffer.concat([Buffer.from('{sha256}'), Buffer.alloc(40, 7)]);
  socket.write(frame(Buffer.concat([Buffer.from('#CHALLENGE#'), nonce])));
  const response = await read();
  assert.deepEqual(response, Buffer.concat([Buffer.from('{sha256}'), createHmac('sha256', KEY).update(nonce).digest()]));
  // #WELCOME# and two requests in one write: [1][u32 id][u16 3]['add'][json].
  const request = (id: number, body: string) => frame(Buffer.concat([Buffer.from([1, 0, 0, 0, id, 0, 3]), Buffer.from('add'), Buffer.from(body)]));
  socket.write(Buffer.concat([frame('#WELCOME#'), request(1, '[1,2]'), request(2, '[3,4]')]));
  const replies = [String(await read()), String(await read())].sort();
  assert.deepEqual(replies, ['\x02\x00\x00\x00\x013', '\x02\x00\x00\x00\x027']);
  assert.equal(seen.runs, 2);
  socket.destroy();
});

test('authenticate() checks its arguments, and refuses Unix sockets of ours; a signal aborts it', async (t) => {
  const [a, b] = unixSocketPair({ type: 'stream' });
  t.after(() => Promise.all([a.close(), b.close()]));
  await assert.rejects(authenticate(a as never, { authkey: KEY, role: 'server' }), { code: 'ERR_INVALID_ARG_VALUE', message: /peerCredentials/ });
  const socketPath = testSocketPath(t, 'args.sock');
  await using listener = await listen(socketPath);
  const accepted = once(listener, 'connection');
  const socket = await connect(socketPath);
  const [server] = (await accepted) as [net.Socket];
  t.after(() => server.destroy());
  await assert.rejects(authenticate(socket, { authkey: '', role: 'client' }), { code: 'ERR_INVALID_ARG_VALUE', message: /empty/ });
  await assert.rejects(authenticate(socket, { authkey: KEY, role: 'listener' as never }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(authenticate(socket, { authkey: 42 as never, role: 'client' }), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(authenticate(socket, { authkey: KEY, role: 'client', authTimeout: 0 }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(authenticate(socket, { authkey: KEY, role: 'client', authDigest: 'sha1' as never }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(serveRpc(testSocketPath(t, 'x.sock'), { authDigest: 'sha256' }), { code: 'ERR_INVALID_ARG_VALUE', message: /without options.authkey/ });
  const controller = new AbortController();
  const pending = authenticate(socket, { authkey: KEY, role: 'client', signal: controller.signal });
  controller.abort();
  await assert.rejects(pending, { code: 'ABORT_ERR' });
  assert.equal(socket.destroyed, true);
});

test('authenticate() over a pair of pipes, both sides in one process: a stream pair works as a Channel would take it', async () => {
  const { pipe } = await import('interprocess');
  const up = pipe();
  const down = pipe();
  const left = { readable: down.receiver, writable: up.sender };
  const right = { readable: up.receiver, writable: down.sender };
  await Promise.all([authenticate(left, { authkey: KEY, role: 'server' }), authenticate(right, { authkey: KEY, role: 'client' })]);
  const a = new Channel(left);
  const b = new Channel(right);
  await a.send({ hello: 'pipes' });
  assert.deepEqual((await b[Symbol.asyncIterator]().next()).value, { hello: 'pipes' });
  await Promise.all([a.close(), b.close()]);
});

// ---- Beyond one machine: TCP and TLS ----

/** A TCP (or TLS) echo server of Channels behind the handshake, on 127.0.0.1; it records failures. */
async function tcpServer(t: TestContext, make: (onSocket: (socket: net.Socket) => void) => net.Server) {
  const failures: string[] = [];
  let served = 0;
  const server = make(async (socket) => {
    socket.on('error', () => {});
    try {
      await authenticate(socket, { authkey: KEY, role: 'server' });
    } catch (error) {
      failures.push((error as InterprocessError).code);
      return;
    }
    const channel = new Channel<[string, number]>(socket);
    for await (const [word, n] of channel) {
      served++;
      await channel.send([`${word}-reply`, n]);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, failures, served: () => served };
}

test('a channel over TCP on 127.0.0.1, across processes: the right key talks, a wrong key is refused', { timeout: 60_000 }, async (t) => {
  const { port, failures, served } = await tcpServer(t, (onSocket) => net.createServer(onSocket));
  const good = spawnFixture(t, 'auth-tcp-client', ['tcp', String(port), KEY]);
  assert.deepEqual(await good.next('done'), { type: 'done', ok: true, replies: [['ping-reply', 0], ['ping-reply', 1], ['ping-reply', 2]] });
  const bad = spawnFixture(t, 'auth-tcp-client', ['tcp', String(port), 'guessed']);
  const refused = await bad.next<{ ok: boolean; code: string; destroyed: boolean }>('done');
  assert.equal(refused.ok, false);
  assert.equal(refused.code, 'ERR_INTERPROCESS_AUTH');
  assert.equal(refused.destroyed, true);
  await until(() => failures.length === 1);
  assert.deepEqual(failures, ['ERR_INTERPROCESS_AUTH']);
  assert.equal(served(), 3);
});

/** A self-signed certificate for localhost, made with openssl (a test dependency, like python3). */
function selfSigned(t: TestContext): { key: string; cert: string; certPath: string } {
  const dir = scratchDir(t);
  const keyPath = path.join(dir, 'key.pem');
  const certPath = path.join(dir, 'cert.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', keyPath, '-out', certPath], { encoding: 'utf8' });
  assert.equal(made.status, 0, `openssl failed: ${made.error ?? made.stderr}`);
  return { key: fs.readFileSync(keyPath, 'utf8'), cert: fs.readFileSync(certPath, 'utf8'), certPath };
}

test('a channel over TLS, across processes: the certificate guards the path, the authkey the door', { timeout: 60_000, skip: process.platform === 'win32' && 'openssl is not in the Windows (Wine) CI' }, async (t) => {
  const { key, cert, certPath } = selfSigned(t);
  const { port, failures, served } = await tcpServer(t, (onSocket) => tls.createServer({ key, cert }, onSocket));
  const good = spawnFixture(t, 'auth-tcp-client', ['tls', String(port), KEY, certPath]);
  assert.deepEqual(await good.next('done'), { type: 'done', ok: true, replies: [['ping-reply', 0], ['ping-reply', 1], ['ping-reply', 2]] });
  const bad = spawnFixture(t, 'auth-tcp-client', ['tls', String(port), 'guessed', certPath]);
  assert.equal((await bad.next<{ code: string }>('done')).code, 'ERR_INTERPROCESS_AUTH');
  await until(() => failures.length === 1);
  assert.deepEqual(failures, ['ERR_INTERPROCESS_AUTH']);
  assert.equal(served(), 3);
});
