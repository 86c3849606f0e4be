// The runtime smoke: the installed package under Bun and Deno (and Node, as the reference).
// test/runtimes/run.mjs copies this file into a scratch project where the packed `interprocess`
// is installed and runs it with each runtime. One line per primitive: `ok - name: detail`, or
// `unsupported - name: CODE message` when the primitive refused with a typed InterprocessError,
// or `FAIL - name: ...` for anything else (a wrong result, an untyped error, a hang, a crash).
// run.mjs compares those lines with what each runtime is expected to do (its table is the README's).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ipc from 'interprocess';

const runtime = typeof process.versions.bun === 'string' ? `bun ${process.versions.bun}` : typeof process.versions.deno === 'string' ? `deno ${process.versions.deno}` : `node ${process.version}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipc-runtime-'));
const unique = (prefix) => `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const within = (ms, what, promise) => {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms (a hang)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};
const readAll = (stream) =>
  new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
let failed = 0;

async function check(name, fn) {
  try {
    const detail = await within(30_000, name, fn());
    console.log(`ok - ${name}${detail ? `: ${detail}` : ''}`);
  } catch (error) {
    if (error instanceof ipc.InterprocessError && error.code === 'ERR_INTERPROCESS_UNSUPPORTED') {
      console.log(`unsupported - ${name}: ${error.code} ${error.message}`);
    } else {
      failed++;
      console.log(`FAIL - ${name}: ${error?.stack ?? error}`);
    }
  }
}

console.log(`runtime: ${runtime}, addon loaded: ${ipc.nativeStatus().loaded}`);

await check('local socket with the peer pid', async () => {
  const name = ipc.nsName(unique('rt-local'));
  const listener = await ipc.listen(name);
  try {
    const accepted = new Promise((resolve) => listener.once('connection', resolve));
    const client = await ipc.connect(name);
    const server = await accepted;
    const credentials = server.peerCredentials();
    assert.equal(credentials.pid, process.pid);
    assert.equal(client.peerCredentials().pid, process.pid);
    const echoed = readAll(client);
    server.end('pong');
    client.end('ping');
    assert.equal(String(await readAll(server)), 'ping');
    assert.equal(String(await echoed), 'pong');
    return `peer pid ${credentials.pid}, uid ${credentials.uid}`;
  } finally {
    await listener.close();
  }
});

await check('pipe: 4 MiB through pipe(), checksummed; a child (sh) writes through spawnWith', async () => {
  const { sender, receiver } = ipc.pipe();
  const data = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
  const received = readAll(receiver);
  sender.end(data);
  const got = await received;
  const hash = (b) => createHash('sha256').update(b).digest('hex');
  assert.equal(hash(got), hash(data));
  const second = ipc.pipe();
  const fromChild = readAll(second.receiver);
  ipc.spawnWith('/bin/sh', ['-c', 'printf "from sh" >&3'], { fds: { 3: second.sender }, stdio: 'ignore' });
  assert.equal(String(await fromChild), 'from sh');
  return `${got.length} bytes`;
});

await check('FIFO: no reader is a typed ENXIO; then a reader and a writer', async () => {
  const fifo = path.join(dir, 'fifo');
  await ipc.createFifo(fifo);
  await assert.rejects(ipc.openFifoWriter(fifo), { code: 'ENXIO' });
  const reader = ipc.openFifoReader(fifo);
  const writer = await ipc.openFifoWriter(fifo);
  const text = readAll(reader);
  writer.end('through the FIFO');
  assert.equal(String(await text), 'through the FIFO');
  return 'ENXIO, then data and end of stream';
});

await check('datagram: bindDatagram, send, receive', async () => {
  const name = ipc.nsName(unique('rt-dgram'));
  const server = await ipc.bindDatagram(name);
  try {
    const client = await ipc.bindDatagram(null, { connect: name });
    await client.send('one datagram');
    const message = await server.receive();
    assert.equal(String(message.data), 'one datagram');
    await client.close();
    return 'one datagram';
  } finally {
    await server.close();
  }
});

await check('channel: an RPC request over a local socket', async () => {
  const name = ipc.nsName(unique('rt-rpc'));
  const server = await ipc.serveRpc(name);
  try {
    server.handle('add', ([a, b]) => a + b);
    const client = await ipc.connectRpc(name, { requestTimeout: 10_000 });
    assert.equal(await client.request('add', [2, 3]), 5);
    await client.close();
    return '2 + 3 = 5';
  } finally {
    await server.close();
  }
});

await check('signals: onSignal and sendSignal to this process', async () => {
  const seen = [];
  const subscription = ipc.onSignal('SIGUSR2', (name) => seen.push(name));
  try {
    ipc.sendSignal(process.pid, 'SIGUSR2');
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(seen, ['SIGUSR2']);
    return 'SIGUSR2 caught';
  } finally {
    subscription();
  }
});

fs.rmSync(dir, { recursive: true, force: true });
console.log(failed === 0 ? 'runtime smoke done' : `runtime smoke: ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
