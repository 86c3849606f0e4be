// Unix datagram and seqpacket sockets: interprocess against the npm packages that offer them
// (unix-dgram, node-unix-socket: Node core has neither) and plain C. Targets: at least twice the
// best npm peer's message rate, and at least half of C's.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile } from '../lib/stats.js';

const WORKER = fileURLToPath(new URL('../workers/unix-socket.js', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);

const SIZES = {
  quick: { datagrams: 100_000, latencyWarmup: 1000, latencyRounds: 2000 },
  full: { datagrams: 500_000, latencyWarmup: 2000, latencyRounds: 20_000 },
};
const MESSAGE_BYTES = 64;

/**
 * Whether each npm peer can run here: null if so, else why not (shown in its column). The peers
 * are dev dependencies compiled on install, and npm 11 runs no dependency's install script by
 * default, so unix-dgram is built here (`npm rebuild unix-dgram`) when its binary is missing.
 */
function peersAvailable() {
  const load = (name) => {
    try {
      require(name);
      return null;
    } catch (error) {
      return `${name} does not load (${String(error.message).split('\n')[0].slice(0, 60)})`;
    }
  };
  const unixDgramBinary = path.join(root, 'node_modules', 'unix-dgram', 'build', 'Release', 'unix_dgram.node');
  if (existsSync(path.join(root, 'node_modules', 'unix-dgram')) && !existsSync(unixDgramBinary)) {
    process.stderr.write('Building the unix-dgram peer (npm rebuild unix-dgram)...\n');
    const built = spawnSync('npm', ['rebuild', 'unix-dgram'], { cwd: root, encoding: 'utf8' });
    if (built.status !== 0) return { 'unix-dgram': 'did not build (npm rebuild unix-dgram failed)', 'node-unix-socket': load('node-unix-socket') };
  }
  return { 'unix-dgram': load('unix-dgram'), 'node-unix-socket': load('node-unix-socket') };
}

function row({ id, label, test, reporter, params, metrics, unsupported = {}, pin = false }) {
  return {
    id,
    label,
    pin,
    metrics,
    unsupported, // implementation -> why it has no such test
    params: (quick) => params(quick ? SIZES.quick : SIZES.full),
    plan(impl, { tempPath, quick, cBinary }) {
      const socketPath = `${tempPath}.sock`;
      const numbers = Object.values(this.params(quick)).map(String);
      const command = (role) => {
        const args = [test, role, socketPath, ...numbers];
        return impl === 'c' ? [cBinary('unix_socket'), ...args] : [process.execPath, WORKER, impl, ...args];
      };
      return { server: command('server'), client: command('client'), reporter };
    },
  };
}

// Datagram rates: at least twice the best npm peer, at least half of C; a run that lost any fails.
const rateMetrics = [
  {
    key: 'rate',
    unit: 'msg/s',
    better: 'higher',
    within: null,
    targets: [
      { against: 'counterpart', ratio: 2 },
      { against: 'c', ratio: 0.5 },
    ],
    from: (r) => {
      if (r.lost !== 0) throw new Error(`lost ${r.lost.toLocaleString('en-US')} of ${(r.messages + r.lost).toLocaleString('en-US')}`);
      return (r.messages / r.ns) * 1e9;
    },
  },
];

export default {
  name: 'unix-socket',
  nodeCounterpart: 'none in Node core; the columns unix-dgram and node-unix-socket are the npm peers',
  implementations: [
    { key: 'interprocess', title: 'interprocess' },
    { key: 'unix-dgram', title: 'unix-dgram' },
    { key: 'node-unix-socket', title: 'node-unix-socket' },
    { key: 'c', title: 'C' },
  ],
  // interprocess is compared with the best of these (the "peer" in the ratio columns).
  counterparts: ['unix-dgram', 'node-unix-socket'],
  counterpartTitle: 'peer',
  unavailable: peersAvailable,
  rows: [
    row({
      id: 'unix-socket/datagram-rate',
      label: `${MESSAGE_BYTES}-byte datagrams, connected sender to a bound receiver`,
      test: 'dgram-rate',
      reporter: 'server', // timed at the receiver, first message to last
      params: (s) => ({ count: s.datagrams, messageBytes: MESSAGE_BYTES }),
      metrics: rateMetrics,
    }),
    row({
      id: 'unix-socket/datagram-rate-pinned',
      label: `the same, both processes on CPU 0 (info: the regime of a busy machine, one context switch pair per 10 datagrams)`,
      test: 'dgram-rate',
      reporter: 'server',
      pin: true,
      params: (s) => ({ count: s.datagrams, messageBytes: MESSAGE_BYTES }),
      metrics: [{ ...rateMetrics[0], targets: undefined }],
    }),
    row({
      id: 'unix-socket/datagram-pair-rate',
      label: `${MESSAGE_BYTES}-byte datagrams, each end bound and connected to the other (no 10-datagram queue cap)`,
      test: 'dgram-pair-rate',
      reporter: 'server',
      params: (s) => ({ count: s.datagrams, messageBytes: MESSAGE_BYTES }),
      unsupported: { 'node-unix-socket': 'no connect() on datagram sockets' },
      metrics: rateMetrics,
    }),
    row({
      id: 'unix-socket/seqpacket-latency',
      label: `seqpacket ping-pong ${MESSAGE_BYTES} B`,
      test: 'seqpacket-latency',
      reporter: 'client',
      params: (s) => ({ warmup: s.latencyWarmup, rounds: s.latencyRounds, messageBytes: MESSAGE_BYTES }),
      unsupported: { 'unix-dgram': 'no seqpacket sockets' },
      metrics: [
        { key: 'p50', unit: 'p50 µs', better: 'lower', within: null, targets: [{ against: 'counterpart', ratio: 1 }], from: (r) => percentile(r.samples_ns, 50) / 1000 },
        { key: 'p99', unit: 'p99 µs', better: 'lower', within: null, from: (r) => percentile(r.samples_ns, 99) / 1000 },
      ],
    }),
    // The same with both processes on CPU 0: without the cross-CPU wakeup, the per-message cost
    // of each library (the issue 19 row: SO_PASSCRED toggling cost two syscalls a read).
    row({
      id: 'unix-socket/seqpacket-latency-pinned',
      label: `seqpacket ping-pong ${MESSAGE_BYTES} B, both processes on CPU 0`,
      test: 'seqpacket-latency',
      reporter: 'client',
      pin: true,
      params: (s) => ({ warmup: s.latencyWarmup, rounds: s.latencyRounds, messageBytes: MESSAGE_BYTES }),
      unsupported: { 'unix-dgram': 'no seqpacket sockets' },
      metrics: [
        { key: 'p50', unit: 'p50 µs', better: 'lower', within: null, targets: [{ against: 'counterpart', ratio: 1 }], from: (r) => percentile(r.samples_ns, 50) / 1000 },
        { key: 'p99', unit: 'p99 µs', better: 'lower', within: null, from: (r) => percentile(r.samples_ns, 99) / 1000 },
      ],
    }),
  ],
};
