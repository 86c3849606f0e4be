// One side of a shared-memory measurement, run in its own process by the harness.
// Usage: node shm.js <impl> rate <role> <socket-path> <count> <messageBytes>
//   impl: interprocess (a Channel with transport: 'shared-memory' over a Unix stream socket)
//         socket (the same Channel, raw codec, over a local socket: the default transport)
// Raw codec both ways: the bytes are the message, so the row measures the transport. The
// receiver checks each message's length and its first 4 bytes (its sequence number).
import { exitWhenOrphaned, fail, report } from '../lib/worker.js';

const [impl, test, role, socketPath, ...numbers] = process.argv.slice(2);
exitWhenOrphaned();
const [count, messageBytes] = numbers.map(Number);
const ipc = await import('../../dist/index.js');
if (test !== 'rate') fail(new Error(`unknown test ${test}`));
const options = { codec: 'raw', maxMessageSize: 64 << 20, ...(impl === 'interprocess' ? { transport: 'shared-memory' } : {}) };

if (role === 'server') {
  const listener = impl === 'interprocess' ? await ipc.listenUnix(socketPath) : await ipc.listen(socketPath);
  listener.once('connection', (socket) => {
    const channel = new ipc.Channel(socket, options);
    const warm = Math.floor(count / 5);
    let got = 0;
    let bad = 0;
    let first = 0n;
    channel.on('message', (m) => {
      const now = process.hrtime.bigint();
      if (got === warm) first = now;
      if (m.length !== messageBytes || (messageBytes >= 4 && m.readUInt32LE(0) !== got)) bad++;
      got++;
      if (got === count) report({ expected: count, messages: got, timed: got - 1 - warm, bad, ns: Number(now - first), bytes: messageBytes }, true);
    });
    channel.on('error', fail);
  });
  await report({ ready: true });
} else {
  const socket = impl === 'interprocess' ? await ipc.connectUnix(socketPath) : await ipc.connect(socketPath);
  const channel = new ipc.Channel(socket, options);
  channel.on('error', () => {});
  const WINDOW = messageBytes >= 65536 ? 8 : 256;
  for (let i = 0; i < count; i++) {
    const body = Buffer.alloc(messageBytes, 1);
    if (messageBytes >= 4) body.writeUInt32LE(i, 0);
    const sent = channel.send(body);
    if (i % WINDOW === WINDOW - 1) await sent;
  }
  await channel.close().catch(() => {});
  process.exit(0);
}
