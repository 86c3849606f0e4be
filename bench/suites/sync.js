// The blocking client (connectSync): a 64-byte round trip with blocking calls, against the async
// client (connect()) on the same interprocess server, against C's blocking round trip.
import { fileURLToPath } from 'node:url';
import { percentile } from '../lib/stats.js';

const WORKER = fileURLToPath(new URL('../workers/sync.js', import.meta.url));
const SIZES = {
  quick: { warmup: 1000, rounds: 2000 },
  full: { warmup: 2000, rounds: 20000 },
};
const MESSAGE_BYTES = 64;

function row({ id, label, pin = false }) {
  return {
    id,
    label,
    pin,
    metrics: [
      { key: 'p50', unit: 'p50 µs', better: 'lower', within: null, from: (r) => percentile(r.samples_ns, 50) / 1000 },
      { key: 'p99', unit: 'p99 µs', better: 'lower', within: null, from: (r) => percentile(r.samples_ns, 99) / 1000 },
    ],
    params: (quick) => ({ ...(quick ? SIZES.quick : SIZES.full), messageBytes: MESSAGE_BYTES }),
    plan(impl, { tempPath, quick, cBinary }) {
      const socketPath = `${tempPath}.sock`;
      const numbers = Object.values(this.params(quick)).map(String);
      const command = (role) => {
        const args = ['latency', role, socketPath, ...numbers];
        return impl === 'c' ? [cBinary('local_socket'), ...args] : [process.execPath, WORKER, impl, ...args];
      };
      return { server: command('server'), client: command('client'), reporter: 'client' };
    },
  };
}

export default {
  name: 'sync',
  // The "node" column here is interprocess's own async client: what the blocking one is compared with.
  nodeCounterpart: "interprocess's async connect() client ('data' events) on the same listen() server; the sync column is connectSync() (write + readExact)",
  implementations: [
    { key: 'interprocess', title: 'sync' },
    { key: 'node', title: 'async' },
    { key: 'c', title: 'C' },
  ],
  counterpartTitle: 'async',
  rows: [
    row({ id: 'sync/latency', label: 'ping-pong 64 B, blocking client' }),
    row({ id: 'sync/latency-pinned', label: 'ping-pong 64 B, blocking client, both on CPU 0', pin: true }),
  ],
};
