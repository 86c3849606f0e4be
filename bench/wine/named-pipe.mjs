// The Windows side of bench/wine/run.js: runs in node.exe (under Wine in CI). The parent is the
// server and measures; each measurement starts a fresh child process as the client.
//   node named-pipe.mjs [--quick] [--reps=N]       prints one JSON line: { rows: [...] }
//   node named-pipe.mjs --child IMPL TEST NAME ARGS...
// IMPL: 'interprocess' (listenNamedPipe/connectNamedPipe) or 'node' (net on a \\.\pipe\ path).
// TEST: 'throughput' (byte stream, 64 KiB writes), 'message-throughput' (64 KiB messages; node:
// the same bytes as a stream, as net has no message mode), 'pingpong' (64-byte round trips,
// message mode for interprocess, a byte stream for node).
import { fork } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { connectNamedPipe, listenNamedPipe } from '../../dist/index.js';

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const KiB = 1024;
const CHUNK = 64 * KiB;

function pipeName() {
  return `interprocess-bench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

async function client(impl, test, name, total, rounds) {
  const message = Buffer.alloc(test === 'pingpong' ? 64 : CHUNK, 7);
  if (impl === 'interprocess' && test !== 'throughput') {
    const pipe = await connectNamedPipe(name, { type: 'message', wait: true, timeout: 30_000 });
    if (test === 'pingpong') {
      const samples = [];
      for (let i = 0; i < rounds; i++) {
        const start = process.hrtime.bigint();
        await pipe.send(message);
        await pipe.receive();
        samples.push(Number(process.hrtime.bigint() - start));
      }
      process.send({ samples });
    } else {
      // Several sends in flight, as a stream keeps several writes queued.
      const inFlight = new Set();
      for (let sent = 0; sent < total; sent += CHUNK) {
        const p = pipe.send(message);
        inFlight.add(p);
        void p.then(() => inFlight.delete(p));
        if (inFlight.size >= 8) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    }
    await pipe.close();
    return;
  }
  const socket = impl === 'interprocess' ? await connectNamedPipe(name, { wait: true, timeout: 30_000 }) : net.connect(`\\\\.\\pipe\\${name}`);
  if (impl === 'node') await once(socket, 'connect');
  if (test === 'pingpong') {
    const samples = [];
    let pending = 0;
    let resolveRound;
    socket.on('data', (chunk) => {
      pending -= chunk.length;
      if (pending <= 0) resolveRound();
    });
    for (let i = 0; i < rounds; i++) {
      const start = process.hrtime.bigint();
      pending = 64;
      await new Promise((resolve) => {
        resolveRound = resolve;
        socket.write(message);
      });
      samples.push(Number(process.hrtime.bigint() - start));
    }
    process.send({ samples });
  } else {
    for (let sent = 0; sent < total; sent += CHUNK) {
      if (!socket.write(message)) await once(socket, 'drain');
    }
  }
  await new Promise((resolve) => socket.end(resolve));
}

/** One measurement: a fresh server here, a fresh client process; returns the client's or our figures. */
async function measure(impl, test, total, rounds) {
  const name = pipeName();
  let bytes = 0;
  let first = 0n;
  let last = 0n;
  const serve = (conn) => {
    if (test === 'pingpong') {
      if (impl === 'interprocess') void (async () => { for await (const m of conn) await conn.send(m); })();
      else conn.on('data', (chunk) => conn.write(chunk));
      return;
    }
    const count = (length) => {
      if (bytes === 0) first = process.hrtime.bigint();
      bytes += length;
      last = process.hrtime.bigint();
    };
    if (impl === 'interprocess' && test === 'message-throughput') void (async () => { for await (const m of conn) count(m.length); })();
    else conn.on('data', (chunk) => count(chunk.length));
  };
  let server;
  if (impl === 'interprocess') {
    server = await listenNamedPipe(name, test === 'throughput' ? {} : { type: 'message' });
    server.on('connection', serve);
  } else {
    server = net.createServer(serve);
    await new Promise((resolve) => server.listen(`\\\\.\\pipe\\${name}`, resolve));
  }
  const child = fork(self, ['--child', impl, test, name, String(total), String(rounds)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const report = new Promise((resolve) => child.once('message', resolve));
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`${impl} ${test}: the client exited with ${code}`);
  await new Promise((resolve) => setTimeout(resolve, 50)); // the last bytes' events
  server.close();
  if (test === 'pingpong') {
    const { samples } = await report;
    samples.sort((a, b) => a - b);
    return { p50: samples[Math.floor(samples.length / 2)] / 1000, p99: samples[Math.floor(samples.length * 0.99)] / 1000 };
  }
  if (bytes !== total) throw new Error(`${impl} ${test}: received ${bytes} of ${total} bytes`);
  return { throughput: bytes / Number(last - first) };
}

if (args[0] === '--child') {
  const [, impl, test, name, total, rounds] = args;
  await client(impl, test, name, Number(total), Number(rounds));
  process.exit(0);
} else {
  const quick = args.includes('--quick');
  const reps = Number(args.find((a) => a.startsWith('--reps='))?.slice(7) ?? (quick ? 3 : 5));
  const total = (quick ? 64 : 512) * 1024 * KiB;
  const rounds = quick ? 2000 : 10000;
  const rows = [];
  for (const test of ['throughput', 'message-throughput', 'pingpong']) {
    for (const impl of ['interprocess', 'node']) {
      const runs = [];
      for (let i = 0; i < reps; i++) runs.push(await measure(impl, test, total, rounds));
      rows.push({ test, impl, runs });
      process.stderr.write(`${test} ${impl}: done\n`);
    }
  }
  console.log(JSON.stringify({ node: process.version, total, rounds, reps, rows }));
}
