// One side of a channel measurement, run in its own process by the harness.
// Usage: node channel.js <impl> <test> <role> <socket-path> <numbers...>
//   impl: interprocess | interprocess-v8 (Channel / RpcChannel from dist/, json or v8 codec)
//         node-ipc (the npm package, loaded from bench/.peers/ only)
//         cp-json | cp-advanced (child_process.fork's IPC channel; role 'parent' forks the 'child')
//   test: rate <count> <messageBytes> | rpc <warmup> <rounds> <messageBytes>
//   node-ipc check: loads node-ipc and exits 0 (the suite's availability check).
// Every message is the same object, { seq, pad }, about messageBytes long as JSON; the receiver
// checks every seq in order, so a lost or reordered message shows in the result.
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { exitWhenOrphaned, fail, report } from '../lib/worker.js';

const [impl, test, role, socketPath, ...numbers] = process.argv.slice(2);
const NODE_IPC = fileURLToPath(new URL('../.peers/node_modules/node-ipc/node-ipc.js', import.meta.url));

if (test === 'check') {
  await import(pathToFileURL(NODE_IPC).href).catch(fail);
  process.exit(0);
}

// A forked child shares the parent's stdin and stdout; it goes when the IPC channel does.
if (role === 'child') {
  exitWhenOrphaned({ watchStdin: false });
  process.on('disconnect', () => process.exit(0));
} else {
  exitWhenOrphaned();
}

const size = Number(numbers.at(-1));
// Sends in flight at most (interprocess and cp): 256 messages, or 1 MiB of them if less (one
// message of 1 MiB). A window of messages is what a sender of small ones wants; one of 256 large
// messages only measures how fast a library can hold 16 MiB it has not sent (node-ipc, which
// waits for 'drain', holds one).
const WINDOW = Math.max(1, Math.min(256, Math.floor(2 ** 20 / size)));
const PAD = 'x'.repeat(Math.max(0, size - JSON.stringify({ seq: 0, pad: '' }).length));
const message = (seq) => ({ seq, pad: PAD });

/**
 * Counts `count` messages in order and reports (and exits); reports early if they stop coming.
 * The first fifth warms up (every library's code is still being compiled then): the rate is
 * timed from the message after it to the last, `timed` messages in `ns`.
 */
const IDLE_MS = 3000;
function counter(count) {
  const warm = Math.floor(count / 5);
  let got = 0;
  let bad = 0;
  let first = 0n;
  let last = 0n;
  const done = () => report({ expected: count, messages: got, timed: got - 1 - warm, bad, ns: Number(last - first) }, true);
  setInterval(() => {
    if (got > 0 && Number(process.hrtime.bigint() - last) / 1e6 > IDLE_MS) done();
  }, 500).unref();
  return (m) => {
    last = process.hrtime.bigint();
    if (got === warm) first = last;
    if (m?.seq !== got || m.pad.length !== PAD.length) bad += 1;
    got += 1;
    if (got === count) done();
  };
}

/** Round trips with one request outstanding: `request(m)` resolves with the reply. */
async function roundTrips(warmup, rounds, request) {
  const samples = new Array(rounds);
  let bad = 0;
  const started = performance.now();
  let timed = 0;
  for (let i = 0; i < warmup + rounds; i++) {
    if (i === warmup) timed = performance.now();
    const start = performance.now();
    const reply = await request(message(i));
    if (i >= warmup) samples[i - warmup] = Math.round((performance.now() - start) * 1e6);
    if (reply?.seq !== i || reply.pad.length !== PAD.length) bad += 1;
  }
  const ns = Math.round((performance.now() - timed) * 1e6);
  return { samples_ns: samples, ns, rounds, bad, totalMs: performance.now() - started };
}

// interprocess: a Channel on a local socket for one-way messages, RpcChannel for requests.
async function interprocess(codec) {
  const ipc = await import('../../dist/index.js');
  if (test === 'rate') {
    const count = Number(numbers[0]);
    if (role === 'server') {
      const listener = await ipc.listen(socketPath);
      listener.once('connection', (socket) => {
        const channel = new ipc.Channel(socket, { codec });
        channel.on('message', counter(count));
        channel.on('error', fail);
      });
      return report({ ready: true });
    }
    const channel = new ipc.Channel(await ipc.connect(socketPath), { codec });
    // At most WINDOW sends in flight: send() resolves once the OS has the frame (and every frame
    // sent before it) and waits while the socket is full, so awaiting every WINDOW-th send is the
    // channel's own backpressure, without an await per message.
    for (let i = 0; i < count; i++) {
      const sent = channel.send(message(i));
      if (i % WINDOW === WINDOW - 1) await sent;
    }
    await channel.close();
    return process.exit(0);
  }
  const [warmup, rounds] = numbers.map(Number);
  if (role === 'server') {
    const server = await ipc.serveRpc(socketPath, { codec });
    server.handle('echo', (body) => body);
    server.on('connection', (channel) => channel.on('close', () => process.exit(0)));
    return report({ ready: true });
  }
  const rpc = await ipc.connectRpc(socketPath, { codec });
  const result = await roundTrips(warmup, rounds, (m) => rpc.request('echo', m));
  await rpc.close();
  return report(result, true);
}

// node-ipc, as its README shows: serve()/connectTo() on a path, emit() events. emit() has no
// callback or backpressure, so the sender waits for its socket's 'drain' when it is full.
async function nodeIpc() {
  const { default: ipc } = await import(pathToFileURL(NODE_IPC).href);
  ipc.config.silent = true;
  ipc.config.id = 'bench';
  ipc.config.stopRetrying = true;
  if (role === 'server') {
    ipc.serve(socketPath, () => {
      if (test === 'rate') ipc.server.on('m', counter(Number(numbers[0])));
      else ipc.server.on('req', (data, socket) => ipc.server.emit(socket, 'res', data));
      ipc.server.on('socket.disconnected', () => process.exit(0));
      report({ ready: true });
    });
    ipc.server.on('error', fail);
    ipc.server.start();
    return;
  }
  ipc.connectTo('bench', socketPath, () => {
    const peer = ipc.of.bench;
    peer.on('error', fail);
    peer.on('disconnect', () => process.exit(0)); // the server leaves once it has counted
    peer.on('connect', async () => {
      if (test === 'rate') {
        const count = Number(numbers[0]);
        let i = 0;
        const pump = () => {
          while (i < count) {
            peer.emit('m', message(i++));
            if (peer.socket.writableNeedDrain) return void peer.socket.once('drain', pump);
          }
        };
        return pump();
      }
      let answer = null;
      peer.on('res', (data) => answer(data));
      const [warmup, rounds] = numbers.map(Number);
      const result = await roundTrips(warmup, rounds, (m) => new Promise((resolve) => {
        answer = resolve;
        peer.emit('req', m);
      }));
      report(result, true);
    });
  });
}

// child_process.fork's IPC channel: the parent sends (or requests), the forked child receives
// (or echoes). process.send() calls back once the message is written: a window of them is kept.
async function childProcess(serialization) {
  if (role === 'child') {
    if (test === 'rate') process.on('message', counter(Number(numbers[0])));
    else process.on('message', (m) => process.send(m));
    return;
  }
  const child = fork(fileURLToPath(import.meta.url), [impl, test, 'child', socketPath, ...numbers], { serialization });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  child.on('error', fail);
  if (test === 'rate') {
    const count = Number(numbers[0]);
    let sent = 0;
    let done = 0;
    const pump = () => {
      while (sent < count && sent - done < WINDOW) child.send(message(sent++), onSent);
    };
    function onSent(error) {
      if (error) fail(error);
      done += 1;
      if (sent - done < WINDOW / 2) pump();
    }
    return pump(); // the child reports on our shared stdout and exits; then so do we
  }
  let answer = null;
  child.on('message', (m) => answer(m));
  const [warmup, rounds] = numbers.map(Number);
  const result = await roundTrips(warmup, rounds, (m) => new Promise((resolve) => {
    answer = resolve;
    child.send(m);
  }));
  await report(result);
  child.disconnect(); // the child exits, and we with it
}

const run = {
  interprocess: () => interprocess('json'),
  'interprocess-v8': () => interprocess('v8'),
  'node-ipc': nodeIpc,
  'cp-json': () => childProcess('json'),
  'cp-advanced': () => childProcess('advanced'),
}[impl];
if (!run) fail(new Error(`unknown implementation ${impl}`));
else await run().catch(fail);
