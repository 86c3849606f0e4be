// Shared-memory channels (docs/shared-memory.md): a Channel with transport: 'shared-memory'
// against the same Channel over a local socket (the default transport), and a C baseline on the
// same layout (bench/c/shm.c: memcpy in and out of the ring, spinning with sched_yield instead of
// sleeping). Issue 18's targets: 1 MiB messages at least 3x the socket channel's throughput and
// within 2x of C; 64-byte messages at least 3x the socket channel's message rate.
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('../workers/shm.js', import.meta.url));

const SIZES = {
  quick: { small: 100_000, large: 500 },
  full: { small: 1_000_000, large: 4_000 },
};

function row({ id, label, params, metrics, pin = false }) {
  return {
    id,
    label,
    pin,
    metrics,
    params: (quick) => params(quick ? SIZES.quick : SIZES.full),
    plan(impl, { tempPath, quick, cBinary }) {
      const socketPath = `${tempPath}.sock`;
      const numbers = Object.values(this.params(quick)).map(String);
      const command = (role) => (impl === 'c' ? [cBinary('shm'), 'rate', role, socketPath, ...numbers] : [process.execPath, WORKER, impl, 'rate', role, socketPath, ...numbers]);
      return { server: command('server'), client: command('client'), reporter: 'server' };
    },
  };
}

function checked(r) {
  if (r.bad !== 0 || r.messages !== r.expected) throw new Error(`lost ${r.expected - r.messages}, bad ${r.bad} of ${r.expected}`);
  return r;
}

const rate = (targets) => ({ key: 'rate', unit: 'msg/s', better: 'higher', within: null, targets, from: (r) => (checked(r).timed / r.ns) * 1e9 });
const throughput = (targets) => ({ key: 'throughput', unit: 'GB/s', better: 'higher', within: null, targets, from: (r) => (checked(r).timed * r.bytes) / r.ns });

export default {
  name: 'shm',
  nodeCounterpart: "the same Channel (raw codec) over a local socket, the default transport (column 'socket')",
  implementations: [
    { key: 'interprocess', title: 'ipc shm' },
    { key: 'socket', title: 'socket' },
    { key: 'c', title: 'C' },
  ],
  counterparts: ['socket'],
  counterpartTitle: 'socket',
  rows: [
    row({
      id: 'shm/throughput-1MiB',
      label: 'one-way 1 MiB messages (raw codec), paced by backpressure; GB/s at the receiver',
      params: (s) => ({ count: s.large, messageBytes: 1 << 20 }),
      metrics: [throughput([{ against: 'counterpart', ratio: 3 }, { against: 'c', ratio: 0.5 }])],
    }),
    row({
      id: 'shm/throughput-1MiB-pinned',
      label: 'the same, both processes on CPU 0',
      pin: true,
      params: (s) => ({ count: s.large, messageBytes: 1 << 20 }),
      metrics: [throughput(undefined)],
    }),
    row({
      id: 'shm/rate-64B',
      label: 'one-way 64-byte messages (raw codec); msg/s at the receiver',
      params: (s) => ({ count: s.small, messageBytes: 64 }),
      metrics: [rate([{ against: 'counterpart', ratio: 3 }])],
    }),
    row({
      id: 'shm/rate-64B-pinned',
      label: 'the same, both processes on CPU 0',
      pin: true,
      params: (s) => ({ count: s.small, messageBytes: 64 }),
      metrics: [rate(undefined)],
    }),
  ],
};
