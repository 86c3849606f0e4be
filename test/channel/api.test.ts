// The 1.0 surface of Channel, RpcChannel and RpcServer: send's signal, ref/unref, memoised close,
// destroy, 'end', leaving a loop early (closeOnReturn), RpcServer's 'connection', handle()'s
// remover, iteration and refused count.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Channel, DEFAULT_MAX_MESSAGE_SIZE, RpcChannel, connectRpc, nsName, pipe, serveRpc } from 'interprocess';
import { DEFAULT_MAX_MESSAGE_SIZE as channelDefault } from '#internal/channel/frame.js';
import { readAll, uniqueName } from '../helpers.js';

function channelPair<T = unknown>(options = {}): [Channel<T>, Channel<T>] {
  const a = pipe();
  const b = pipe();
  return [new Channel<T>({ readable: b.receiver, writable: a.sender }, options), new Channel<T>({ readable: a.receiver, writable: b.sender }, options)];
}

function rpcPair<T = unknown>(options = {}): [RpcChannel<T>, RpcChannel<T>] {
  const a = pipe();
  const b = pipe();
  return [new RpcChannel<T>({ readable: b.receiver, writable: a.sender }, options), new RpcChannel<T>({ readable: a.receiver, writable: b.sender }, options)];
}

test("maxMessageSize: the option of Channel and RpcChannel; the default is the package's DEFAULT_MAX_MESSAGE_SIZE", async () => {
  assert.equal(channelDefault, DEFAULT_MAX_MESSAGE_SIZE);
  const [a, b] = channelPair<string>({ maxMessageSize: 8 });
  await assert.rejects(a.send('x'.repeat(20)), { code: 'ERR_INTERPROCESS_FRAME_TOO_LARGE', message: /maxMessageSize/ });
  assert.throws(() => new Channel(pipe().receiver, { maxMessageSize: -1 }), { code: 'ERR_INVALID_ARG_VALUE', message: /maxMessageSize/ });
  const [c, d] = rpcPair({ maxMessageSize: 16 });
  await assert.rejects(c.send('y'.repeat(40)), { code: 'ERR_INTERPROCESS_FRAME_TOO_LARGE' });
  for (const x of [a, b, c, d]) x.destroy();
});

test('send() with a signal: aborted before, nothing is sent; aborted while waiting, the wait ends and the message still goes whole', async () => {
  const a = pipe();
  const b = pipe();
  const sender = new Channel<Buffer>({ readable: b.receiver, writable: a.sender }, { codec: 'raw' });
  const big = Buffer.alloc(4 << 20, 7);
  const first = sender.send(big); // nobody reads yet: this waits for the pipe
  const controller = new AbortController();
  const second = sender.send(Buffer.from('second'), { signal: controller.signal });
  await sleep(50);
  controller.abort();
  await assert.rejects(second, { code: 'ABORT_ERR' });
  await assert.rejects(sender.send(Buffer.from('never'), { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  await assert.rejects(sender.send(Buffer.from('x'), { signal: 'no' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  const third = sender.send(Buffer.from('third'));
  const receiver = new Channel<Buffer>({ readable: a.receiver, writable: b.sender }, { codec: 'raw' });
  const got: Buffer[] = [];
  for await (const message of receiver.iterator({ closeOnReturn: false })) {
    got.push(message);
    if (got.length === 3) break;
  }
  await first;
  await third;
  assert.equal(got[0]!.length, big.length);
  assert.deepEqual(got.slice(1).map(String), ['second', 'third']);
  // RpcChannel's send and notify take it too.
  const [c, d] = rpcPair();
  await assert.rejects(c.send(1, { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  await assert.rejects(c.notify('e', 1, { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
  for (const x of [sender, receiver, c, d]) x.destroy();
});

const refScript = fileURLToPath(new URL('../fixtures/channel-ref.js', import.meta.url));

for (const kind of ['channel', 'rpc', 'server'] as const) {
  test(`unref() lets the process exit with an open ${kind}; ref() holds it again`, { timeout: 60_000 }, async () => {
    for (const mode of ['unref', 'ref'] as const) {
      const child = spawn(process.execPath, [refScript, kind, mode, uniqueName()], { stdio: ['ignore', 'pipe', 'inherit'] });
      const [output, [code]] = await Promise.all([readAll(child.stdout).then(String), once(child, 'exit')]);
      assert.equal(code, 0, `${kind} ${mode}`);
      assert.equal(output.trim(), mode === 'ref' ? 'held' : '', `${kind} ${mode}`);
    }
  });
}

test('close() is memoised on all three, also after destroy(); destroy(error) emits error then close', async () => {
  const [a, b] = channelPair();
  const closing = a.close();
  assert.equal(a.close(), closing);
  await closing;
  b.destroy();
  const afterDestroy = b.close();
  assert.equal(b.close(), afterDestroy);
  await afterDestroy;

  const [c, d] = rpcPair();
  assert.equal(c.close(), c.close());
  const events: string[] = [];
  d.on('error', (error) => events.push(`error ${error.code}`));
  d.on('close', (error) => events.push(`close ${error?.code}`));
  d.destroy(new Error('boom'));
  const code = d.channel.error?.code;
  assert.match(String(d.channel.error?.message), /boom/);
  assert.deepEqual(events, [`error ${code}`, `close ${code}`]);
  await assert.rejects(d.request('x'), { code });

  const server = await serveRpc(nsName(uniqueName()));
  const serverClosing = server.close();
  assert.equal(server.close(), serverClosing);
  await serverClosing;
  assert.equal(server.listener.listening, false);
  const other = await serveRpc(nsName(uniqueName()));
  const seen: string[] = [];
  other.on('error', (error) => seen.push(`error ${error.message}`));
  other.on('close', () => seen.push('close'));
  other.destroy(new Error('stop'));
  assert.equal(seen.length, 2);
  assert.match(seen[0]!, /^error .*stop/);
  assert.equal(seen[1], 'close');
  await other.close();
});

test("'end': the peer finished sending", async () => {
  const [a, b] = channelPair();
  const ended = once(b, 'end');
  await a.close();
  await ended;
  const [c, d] = rpcPair();
  const rpcEnded = once(d, 'end');
  await c.close();
  await rpcEnded;
  b.destroy();
  d.destroy();
});

test('Channel: leaving a loop early closes it; with closeOnReturn false it stays open and the next loop gets the unread messages', async () => {
  const [a, b] = channelPair<number>();
  for (let i = 1; i <= 5; i++) void a.send(i);
  const first: number[] = [];
  for await (const n of b.iterator({ closeOnReturn: false })) {
    first.push(n);
    if (n === 2) break;
  }
  assert.deepEqual(first, [1, 2]);
  assert.equal(b.closed, false);
  await b.send(100); // still open both ways
  const rest: number[] = [];
  for await (const { message } of b.withFds({ closeOnReturn: false })) {
    rest.push(message);
    if (message === 3) break;
  }
  void a.close();
  for await (const n of b) rest.push(n);
  assert.deepEqual(rest, [3, 4, 5]);
  // A next() still waiting when its loop is left ends, and the message after it is not lost.
  const [c, d] = channelPair<number>();
  const iterator = d.iterator({ closeOnReturn: false });
  const waiting = iterator.next();
  await iterator.return!();
  assert.deepEqual(await waiting, { value: undefined, done: true });
  await c.send(7);
  for await (const n of d) {
    assert.equal(n, 7);
    break; // the default: closes
  }
  await once(d, 'close');
  await assert.rejects(d.send(8), { code: 'ERR_INTERPROCESS_CLOSED' });
  assert.throws(() => d.iterator({ closeOnReturn: 'no' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  for (const x of [a, b, c]) x.destroy();
});

test('RpcChannel: iterable over plain messages (not requests or events); closeOnReturn false keeps it open for the next loop', async () => {
  const [client, server] = rpcPair<number>();
  server.handle('double', (n) => n * 2);
  const events: number[] = [];
  server.on('event', (_name, body) => events.push(body!));
  const received: number[] = [];
  const loop = (async () => {
    for await (const n of server.iterator({ closeOnReturn: false })) {
      received.push(n);
      if (n === 2) break;
    }
  })();
  await client.send(1);
  assert.equal(await client.request('double', 21), 42);
  await client.notify('tick', 9);
  await client.send(2);
  await client.send(3);
  await client.send(4);
  await loop;
  assert.deepEqual(received, [1, 2]);
  assert.deepEqual(events, [9]);
  assert.equal(await client.request('double', 5), 10, 'still open and answering');
  const rest: number[] = [];
  for await (const n of server) {
    rest.push(n);
    if (n === 4) break; // closes
  }
  assert.deepEqual(rest, [3, 4]);
  await once(server, 'close');
  await assert.rejects(server.send(0), { code: 'ERR_INTERPROCESS_CLOSED' });
  client.destroy();
});

test("RpcServer: 'connection', handle() returns a remover, iteration with closeOnReturn, refused count and event", { timeout: 60_000 }, async () => {
  const name = nsName(uniqueName());
  const server = await serveRpc<number>(name);
  const remove = server.handle('inc', (n) => n + 1);
  const connected = once(server, 'connection');
  const one = await connectRpc<number>(name);
  const [channel] = await connected;
  assert.ok(channel instanceof RpcChannel);
  assert.equal(await one.request('inc', 1), 2);
  remove();
  await assert.rejects(one.request('inc', 1), { code: 'ERR_INTERPROCESS_NO_HANDLER' });
  // A channel's own handler wins over the server's, and removing it uncovers the server's.
  server.handle('who', () => 0);
  const own = channel.handle('who', () => 1);
  assert.equal(await one.request('who'), 1);
  own();
  assert.equal(await one.request('who'), 0);

  // With no 'connection' listener, connections go to iteration, held until taken.
  const two = await connectRpc<number>(name);
  const three = await connectRpc<number>(name);
  await sleep(50);
  const taken: RpcChannel<number>[] = [];
  for await (const rpc of server.iterator({ closeOnReturn: false })) {
    taken.push(rpc);
    break;
  }
  assert.equal(server.listener.listening, true);
  for await (const rpc of server) {
    taken.push(rpc);
    break; // closes the server
  }
  assert.equal(taken.length, 2);
  assert.equal(server.listener.listening, false);
  await Promise.all([one, two, three].map((rpc) => rpc.close().catch(() => {})));

  const refusing = await serveRpc(nsName(uniqueName()), { allow: () => false });
  const refused = once(refusing, 'refused');
  const rogue = await connectRpc(refusing.listener.name);
  const [credentials] = await refused;
  assert.equal((credentials as { pid: number }).pid, process.pid);
  assert.equal(refusing.refused, 1);
  rogue.destroy();
  await refusing.close();
});
