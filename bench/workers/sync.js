// One side of a sync-client measurement, run in its own process by the harness.
// Usage: node sync.js <impl> latency <role> <socket-path> <warmup> <rounds> <messageBytes>
//   server (every impl): interprocess listen(), echoing.
//   client: interprocess = connectSync() (write, then readExact of the echo: blocking calls);
//           node = interprocess connect() (write, then 'data' events: the event loop).
// Protocol: as bench/workers/local-socket.js (the server prints {"ready":true}, the client one
// JSON line with its samples).
import { performance } from 'node:perf_hooks';
import { pingPong } from '../lib/streams.js';
import { exitWhenOrphaned, fail, report } from '../lib/worker.js';

const [impl, test, role, socketPath, ...numbers] = process.argv.slice(2);
const [warmup, rounds, messageBytes] = numbers.map(Number);
exitWhenOrphaned();
if (test !== 'latency') fail(new Error(`unknown test ${test}`));
const { listen, connect, connectSync } = await import('../../dist/index.js');

async function server() {
  const listener = await listen(socketPath);
  listener.on('error', fail);
  report({ ready: true });
  listener.once('connection', (socket) => {
    socket.on('data', (chunk) => socket.write(chunk));
    socket.on('error', fail);
    socket.on('close', () => process.exit(0));
  });
}

// Ping-pong with blocking calls: no event loop between the write and the echo.
function syncClient() {
  const socket = connectSync(socketPath, { timeout: 10_000 });
  const message = Buffer.alloc(messageBytes, 'p');
  const samples = new Array(rounds);
  for (let round = 0; round < warmup + rounds; round++) {
    const start = performance.now();
    socket.write(message);
    socket.readExact(messageBytes);
    if (round >= warmup) samples[round - warmup] = Math.round((performance.now() - start) * 1e6);
  }
  socket.close();
  report({ samples_ns: samples }, true);
}

// The same with the async client, as bench/workers/local-socket.js's latencyClient.
async function asyncClient() {
  const socket = await connect(socketPath);
  const samples = await pingPong(socket, socket, warmup, rounds, messageBytes).catch(fail);
  socket.destroy();
  report({ samples_ns: samples }, true);
}

if (role === 'server') await server();
else if (impl === 'interprocess') syncClient();
else await asyncClient();
