// Shared-memory channels (docs/shared-memory.md): a Channel with transport: 'shared-memory'
// against the same Channel over a local socket (the default transport), and a C baseline on the
// same layout (bench/c/shm.c: memcpy in and out of the ring, spinning with sched_yield instead of
// sleeping). Issue 18's targets: 1 MiB messages at least 3x the socket channel's throughput and
// within 2x of C; 64-byte messages at least 3x the socket channel's message rate; a 64-byte round
// trip with the spin on at most 0.5x the socket channel's, and with it off no worse (C: its
// blocking round trip over a Unix socket, bench/c/local_socket.c).
import { fileURLToPath } from 'node:url';
import { percentile } from '../lib/stats.js';

const WORKER = fileURLToPath(new URL('../workers/shm.js', import.meta.url));

const SIZES = {
  quick: { small: 100_000, large: 500 },
  full: { small: 1_000_000, large: 4_000 },
};

function row({ id, label, params, metrics, pin = false, test = 'rate' }) {
  return {
    id,
    label,
    pin,
    metrics,
    params: (quick) => params(quick ? SIZES.quick : SIZES.full),
    plan(impl, { tempPath, quick, cBinary }) {
      const socketPath = `${tempPath}.sock`;
      const numbers = Object.values(this.params(quick)).map(String);
      const command = (role) => (impl === 'c' ? [cBinary('shm'), 'rate', role, socketPath, ...numbers] : [process.execPath, WORKER, impl, test, role, socketPath, ...numbers]);
      return { server: command('server'), client: command('client'), reporter: 'server' };
    },
  };
}

const LATENCY = { quick: { warmup: 1000, rounds: 3000 }, full: { warmup: 2000, rounds: 20000 } };

// A 64-byte ping-pong between two Channels, `spin` µs of spin on each side of the shared-memory one.
function latencyRow({ id, label, spin, targets, pin = false }) {
  return {
    id,
    label,
    pin,
    metrics: [
      { key: 'p50', unit: 'p50 µs', better: 'lower', within: null, targets, from: (r) => percentile(r.samples_ns, 50) / 1000 },
      { key: 'p99', unit: 'p99 µs', better: 'lower', within: null, from: (r) => percentile(r.samples_ns, 99) / 1000 },
    ],
    params: (quick) => ({ ...(quick ? LATENCY.quick : LATENCY.full), messageBytes: 64, spin }),
    plan(impl, { tempPath, quick, cBinary }) {
      const socketPath = `${tempPath}.sock`;
      const { warmup, rounds, messageBytes } = this.params(quick);
      const numbers = [warmup, rounds, messageBytes].map(String);
      const command = (role) => (impl === 'c' ? [cBinary('local_socket'), 'latency', role, socketPath, ...numbers] : [process.execPath, WORKER, impl, 'latency', role, socketPath, ...numbers, String(spin)]);
      return { server: command('server'), client: command('client'), reporter: 'client' };
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
      id: 'shm/throughput-1MiB-reserve',
      label: 'the same, each message filled in place (Channel#reserve: the ring on shared memory, a Buffer on the socket)',
      test: 'reserve',
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
    latencyRow({
      id: 'shm/latency-spin',
      label: 'ping-pong 64 B (raw codec), spin: 100 µs on both sides (C: a Unix socket round trip)',
      spin: 100,
      targets: [{ against: 'counterpart', ratio: 0.5 }],
    }),
    latencyRow({
      id: 'shm/latency',
      label: 'the same without spin: each message wakes the peer through its doorbell',
      spin: 0,
      targets: [{ against: 'counterpart', ratio: 1 }],
    }),
    latencyRow({
      id: 'shm/latency-pinned',
      label: 'the same, without spin, both processes on CPU 0 (a spin there only delays the peer)',
      spin: 0,
      pin: true,
      targets: undefined,
    }),
  ],
};
