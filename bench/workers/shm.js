// One side of a shared-memory measurement, run in its own process by the harness.
// Usage: node shm.js <impl> rate <role> <socket-path> <count> <messageBytes>
//        node shm.js <impl> reserve <role> <socket-path> <count> <messageBytes>
//        node shm.js <impl> latency <role> <socket-path> <warmup> <rounds> <messageBytes> <spin>
//   impl: interprocess (a Channel with transport: 'shared-memory' over a Unix stream socket;
//           latency: with `spin` microseconds of spin on both sides)
//         socket (the same Channel, raw codec, over a local socket: the default transport)
// latency: the server echoes each message; the client times each round trip (samples in ns).
// reserve: as rate, but the client fills each message in place (Channel#reserve: the peer's ring
// on shared memory, a Buffer on the socket) instead of allocating it and sending it.
// Raw codec both ways: the bytes are the message, so the row measures the transport. The
// receiver checks each message's length and its first 4 bytes (its sequence number).
import { exitWhenOrphaned, fail, report } from '../lib/worker.js';

const [impl, test, role, socketPath, ...numbers] = process.argv.slice(2);
exitWhenOrphaned();
const ipc = await import('../../dist/index.js');
if (!['rate', 'reserve', 'latency'].includes(test)) fail(new Error(`unknown test ${test}`));
const shm = impl === 'interprocess';
const spin = test === 'latency' ? Number(numbers[3]) : 0;
const options = { codec: 'raw', maxMessageSize: 64 << 20, ...(shm ? { transport: 'shared-memory', spin } : {}) };

// Both sides on one socket: a listener's first connection (server) or a connection to it (client).
async function channel() {
  if (role === 'server') {
    const listener = shm ? await ipc.listenUnix(socketPath) : await ipc.listen(socketPath);
    const accepted = new Promise((resolve) => listener.once('connection', resolve));
    await report({ ready: true });
    return new ipc.Channel(await accepted, options);
  }
  return new ipc.Channel(shm ? await ipc.connectUnix(socketPath) : await ipc.connect(socketPath), options);
}

// The server echoes each message; the client times each round trip.
async function latency() {
  const [warmup, rounds, messageBytes] = numbers.map(Number);
  const ch = await channel();
  if (role === 'server') {
    ch.on('message', (m) => ch.send(m).catch(() => {}));
    ch.on('error', () => {});
    ch.on('close', () => process.exit(0));
    return;
  }
  ch.on('error', fail);
  const message = Buffer.alloc(messageBytes, 'p');
  const samples = new Array(rounds);
  let round = 0;
  let start = performance.now();
  ch.on('message', () => {
    const end = performance.now();
    if (round >= warmup) samples[round - warmup] = Math.round((end - start) * 1e6);
    if (++round === warmup + rounds) {
      ch.destroy();
      report({ samples_ns: samples }, true);
      return;
    }
    start = performance.now();
    ch.send(message).catch(fail);
  });
  ch.send(message).catch(fail);
}

// The client sends `count` messages, paced by backpressure; the server times their arrival.
async function rate() {
  const [count, messageBytes] = numbers.map(Number);
  const ch = await channel();
  if (role === 'server') {
    const warm = Math.floor(count / 5);
    let got = 0;
    let bad = 0;
    let first = 0n;
    ch.on('message', (m) => {
      const now = process.hrtime.bigint();
      if (got === warm) first = now;
      if (m.length !== messageBytes || (messageBytes >= 4 && m.readUInt32LE(0) !== got)) bad++;
      got++;
      if (got === count) report({ expected: count, messages: got, timed: got - 1 - warm, bad, ns: Number(now - first), bytes: messageBytes }, true);
    });
    ch.on('error', fail);
    return;
  }
  ch.on('error', () => {});
  const WINDOW = messageBytes >= 65536 ? 8 : 256;
  for (let i = 0; i < count; i++) {
    if (test === 'reserve') {
      const reservation = await ch.reserve(messageBytes);
      const body = reservation.data;
      body.fill(1);
      if (messageBytes >= 4) new DataView(body.buffer, body.byteOffset, 4).setUint32(0, i, true);
      const sent = reservation.commit();
      if (i % WINDOW === WINDOW - 1) await sent;
      continue;
    }
    const body = Buffer.alloc(messageBytes, 1);
    if (messageBytes >= 4) body.writeUInt32LE(i, 0);
    const sent = ch.send(body);
    if (i % WINDOW === WINDOW - 1) await sent;
  }
  await ch.close().catch(() => {});
  process.exit(0);
}

await (test === 'latency' ? latency() : rate()).catch(fail);
