// Local sockets (Unix domain stream sockets): interprocess's listen/connect, against Node's
// net.createServer/net.connect on the same kind of socket, against plain C.
import { fileURLToPath } from 'node:url';
import { percentile } from '../lib/stats.js';

const WORKER = fileURLToPath(new URL('../workers/local-socket.js', import.meta.url));
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// Quick is a smoke check; full is sized for stable medians at about a second per measurement.
const SIZES = {
  quick: { throughputBytes: 256 * MiB, latencyWarmup: 1000, latencyRounds: 2000, acceptWarmup: 200, acceptCount: 1000 },
  full: { throughputBytes: 2 * GiB, latencyWarmup: 2000, latencyRounds: 20000, acceptWarmup: 500, acceptCount: 10000 },
};
const CHUNK_BYTES = 64 * KiB;
const MESSAGE_BYTES = 64;
const CONNECT_CONCURRENCY = 32;

/**
 * A row of this suite: `test` and the values of `params` (in order) are the arguments both
 * sides get (see bench/c/local_socket.c); `reporter` is the side that measures.
 */
function row({ id, label, test, reporter, params, metrics, pin = false }) {
  return {
    id,
    label,
    pin,
    metrics,
    params: (quick) => params(quick ? SIZES.quick : SIZES.full),
    // The two commands for one measurement with implementation `impl`.
    plan(impl, { tempPath, quick, cBinary }) {
      const socketPath = `${tempPath}.sock`;
      const numbers = Object.values(this.params(quick)).map(String);
      const command = (role) => {
        const args = [test, role, socketPath, ...numbers];
        return impl === 'c' ? [cBinary('local_socket'), ...args] : [process.execPath, WORKER, impl, ...args];
      };
      return { server: command('server'), client: command('client'), reporter };
    },
  };
}

const latencyMetrics = [
  { key: 'p50', unit: 'p50 µs', better: 'lower', within: 0.1, from: (r) => percentile(r.samples_ns, 50) / 1000 },
  // p99 is shown for information: on a shared VM it is too noisy to hold to a 10% target.
  { key: 'p99', unit: 'p99 µs', better: 'lower', within: null, from: (r) => percentile(r.samples_ns, 99) / 1000 },
];

export default {
  name: 'local-socket',
  // What the "node" column is for these rows.
  nodeCounterpart: 'node:net (net.createServer().listen(path) / net.connect(path))',
  rows: [
    row({
      id: 'local-socket/throughput',
      label: 'throughput, 64 KiB writes',
      test: 'throughput',
      reporter: 'server', // timed at the receiver, first byte to last
      params: (s) => ({ totalBytes: s.throughputBytes, chunkBytes: CHUNK_BYTES }),
      metrics: [{ key: 'throughput', unit: 'GB/s', better: 'higher', within: 0.1, from: (r) => r.bytes / r.ns }],
    }),
    row({
      id: 'local-socket/latency',
      label: 'ping-pong 64 B',
      test: 'latency',
      reporter: 'client',
      params: (s) => ({ warmup: s.latencyWarmup, rounds: s.latencyRounds, messageBytes: MESSAGE_BYTES }),
      metrics: latencyMetrics,
    }),
    row({
      id: 'local-socket/latency-pinned',
      label: 'ping-pong 64 B, both on CPU 0',
      test: 'latency',
      reporter: 'client',
      params: (s) => ({ warmup: s.latencyWarmup, rounds: s.latencyRounds, messageBytes: MESSAGE_BYTES }),
      metrics: latencyMetrics,
      pin: true, // no cross-CPU wakeups: shows the per-message cost of the library itself
    }),
    row({
      id: 'local-socket/accept',
      label: `connect+accept+close, ${CONNECT_CONCURRENCY} in flight`,
      test: 'accept',
      reporter: 'server',
      params: (s) => ({ warmup: s.acceptWarmup, connections: s.acceptCount, concurrency: CONNECT_CONCURRENCY }),
      metrics: [{ key: 'rate', unit: 'conn/s', better: 'higher', within: 0.15, from: (r) => (r.connections / r.ns) * 1e9 }],
    }),
  ],
};
