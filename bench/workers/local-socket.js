// One side of a local-socket measurement, run in its own process by the harness.
// Usage: node local-socket.js <impl> <test> <role> <socket-path> <numbers...>
//   impl: interprocess (listen/connect from dist/) | node (node:net on the same path)
//   test and numbers: as bench/c/local_socket.c, which does the same in C.
// Protocol: a server prints {"ready":true} once it listens; the side that measures prints one
// JSON line with its result; both exit 0 when done.
import net from 'node:net';
import { pingPong } from '../lib/streams.js';
import { exitWhenOrphaned, fail, report } from '../lib/worker.js';

const [impl, test, role, socketPath, ...numbers] = process.argv.slice(2);
const [a, b, c] = numbers.map(Number);
exitWhenOrphaned();

// Each side uses one library end to end: interprocess with interprocess, net with net.
async function library() {
  if (impl === 'node') {
    return {
      listen: (path) =>
        new Promise((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(path, () => resolve(server));
        }),
      connect: (path) =>
        new Promise((resolve, reject) => {
          const socket = net.connect(path);
          socket.once('error', reject);
          socket.once('connect', () => {
            socket.off('error', reject);
            resolve(socket);
          });
        }),
    };
  }
  if (impl === 'interprocess') {
    const { listen, connect } = await import('../../dist/index.js');
    return { listen, connect };
  }
  throw new Error(`unknown implementation ${impl}`);
}

async function listenReady(lib) {
  const server = await lib.listen(socketPath);
  server.on('error', fail);
  report({ ready: true });
  return server;
}

// Receiver: reads and discards `total` bytes, timed from the first byte to the last.
async function throughputServer(lib, total) {
  const server = await listenReady(lib);
  server.once('connection', (socket) => {
    let got = 0;
    let first = 0n;
    socket.on('data', (chunk) => {
      if (got === 0) first = process.hrtime.bigint();
      got += chunk.length;
      if (got >= total) {
        const ns = Number(process.hrtime.bigint() - first);
        report({ bytes: got, ns }, true);
      }
    });
    socket.on('error', fail);
  });
}

// Sender: 64 KiB writes (the same buffer each time), honouring backpressure.
async function throughputClient(lib, total, chunkBytes) {
  const socket = await lib.connect(socketPath);
  socket.on('error', fail);
  const chunk = Buffer.alloc(chunkBytes, 'x');
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!socket.write(chunk)) return socket.once('drain', pump);
    }
    socket.end();
  };
  pump();
}

async function latencyServer(lib) {
  const server = await listenReady(lib);
  server.once('connection', (socket) => {
    socket.on('data', (chunk) => socket.write(chunk));
    socket.on('error', fail);
    socket.on('close', () => process.exit(0));
  });
}

// Ping-pong: one message out, the whole echo back, then the next; each round trip timed.
async function latencyClient(lib, warmup, rounds, messageBytes) {
  const socket = await lib.connect(socketPath);
  const samples = await pingPong(socket, socket, warmup, rounds, messageBytes).catch(fail);
  socket.destroy();
  report({ samples_ns: samples }, true);
}

// Accepts and closes `warmup + count` connections; times `count` of them after the warmup.
async function acceptServer(lib, warmup, count) {
  const server = await listenReady(lib);
  let accepted = 0;
  let start = 0n;
  server.on('connection', (socket) => {
    socket.on('error', () => {}); // the client may be gone already; that is fine
    socket.destroy();
    accepted += 1;
    if (accepted === warmup) start = process.hrtime.bigint();
    if (accepted === warmup + count) {
      report({ connections: count, ns: Number(process.hrtime.bigint() - start) }, true);
    }
  });
}

// Keeps `concurrency` connections in flight: connect, wait for the server to close, open the
// next. Waiting for the server's close bounds the backlog, so connect never sees EAGAIN.
async function acceptClient(lib, total, concurrency) {
  let started = 0;
  let finished = 0;
  const openOne = () => {
    started += 1;
    lib.connect(socketPath).then((socket) => {
      socket.on('error', (error) => {
        if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') fail(error);
      });
      socket.on('end', () => socket.destroy());
      socket.on('close', () => {
        finished += 1;
        if (finished === total) process.exit(0);
        if (started < total) openOne();
      });
      socket.resume();
    }, fail);
  };
  for (let i = 0; i < Math.min(concurrency, total); i++) openOne();
}

const lib = await library();
const isServer = role === 'server';
switch (test) {
  case 'throughput':
    await (isServer ? throughputServer(lib, a) : throughputClient(lib, a, b));
    break;
  case 'latency':
    await (isServer ? latencyServer(lib) : latencyClient(lib, a, b, c));
    break;
  case 'accept':
    await (isServer ? acceptServer(lib, a, b) : acceptClient(lib, a + b, c));
    break;
  default:
    fail(new Error(`unknown test ${test}`));
}
