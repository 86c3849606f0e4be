// Message channels: interprocess's Channel / RpcChannel on a local socket, against node-ipc (the
// npm package) and Node's own child_process IPC channel (fork, 'json' and 'advanced'
// serialization). Issue 6's targets: at least 5x node-ipc's message rate and faster than Node's
// IPC channel; round trips faster than Node's IPC channel.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { percentile } from '../lib/stats.js';

const WORKER = fileURLToPath(new URL('../workers/channel.js', import.meta.url));
const PEERS = fileURLToPath(new URL('../.peers', import.meta.url));

const SIZES = {
  quick: { small: 50_000, large: 2_000, huge: 50, rpcWarmup: 500, rpcRounds: 2_000, hugeWarmup: 10, hugeRounds: 50 },
  full: { small: 1_000_000, large: 10_000, huge: 300, rpcWarmup: 2_000, rpcRounds: 20_000, hugeWarmup: 20, hugeRounds: 200 },
};
const KiB = 1024;

/**
 * node-ipc is never a project dependency: its recent releases were hijacked (2026) and it once
 * shipped protestware (2022). It is installed on demand into bench/.peers/ (gitignored), with no
 * install scripts, and loaded only in the bench's worker processes, never here.
 */
function nodeIpcAvailable() {
  if (!existsSync(`${PEERS}/node_modules/node-ipc/package.json`)) {
    process.stderr.write('Installing the node-ipc peer into bench/.peers/ (npm install --ignore-scripts node-ipc@latest)...\n');
    const installed = spawnSync('npm', ['install', '--prefix', PEERS, '--ignore-scripts', '--no-save', '--no-audit', '--no-fund', 'node-ipc@latest'], { encoding: 'utf8' });
    if (installed.status !== 0) return 'did not install (npm install node-ipc failed)';
  }
  const loaded = spawnSync(process.execPath, [WORKER, 'node-ipc', 'check'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (loaded.status !== 0) return `does not load (${loaded.stderr.trim().split('\n')[0].slice(0, 60)})`;
  return null;
}

function row({ id, label, test, reporter, params, metrics, pin = false }) {
  return {
    id,
    label,
    pin,
    metrics,
    params: (quick) => params(quick ? SIZES.quick : SIZES.full),
    plan(impl, { tempPath, quick }) {
      const numbers = Object.values(this.params(quick)).map(String);
      const command = (role) => [process.execPath, WORKER, impl, test, role, `${tempPath}.sock`, ...numbers];
      // child_process IPC only exists between a parent and the child it forks.
      if (impl.startsWith('cp-')) return { parent: command('parent') };
      return { server: command('server'), client: command('client'), reporter };
    },
  };
}

/** A result that lost or garbled any message is a failure, not a number. */
function checked(r) {
  if (r.bad !== 0 || (r.expected !== undefined && r.messages !== r.expected)) {
    throw new Error(`lost ${r.expected - r.messages}, bad ${r.bad} of ${r.expected ?? r.rounds}`);
  }
  return r;
}

const rateMetrics = [
  {
    key: 'rate',
    unit: 'msg/s',
    better: 'higher',
    within: null,
    targets: [
      { against: 'counterpart', ratio: 1 },
      { against: 'node-ipc', ratio: 5 },
    ],
    from: (r) => (checked(r).timed / r.ns) * 1e9,
  },
];
// Large messages: JSON.stringify and JSON.parse are most of the work for every JSON library, so
// the target is to be level (not 5x) with node-ipc, and with the better cp column.
const largeRateMetrics = [{ ...rateMetrics[0], targets: [{ against: 'counterpart', ratio: 1 }, { against: 'node-ipc', ratio: 1 }] }];
const rpcMetrics = [
  { key: 'p50', unit: 'p50 µs', better: 'lower', within: null, targets: [{ against: 'counterpart', ratio: 1 }], from: (r) => percentile(checked(r).samples_ns, 50) / 1000 },
  { key: 'rate', unit: 'rt/s', better: 'higher', within: null, from: (r) => (checked(r).rounds / r.ns) * 1e9 },
];

export default {
  name: 'channel',
  nodeCounterpart: "child_process.fork()'s IPC channel (cp-json: serialization 'json', cp-advanced: 'advanced'); cp IPC in the ratios is the better of the two",
  implementations: [
    { key: 'interprocess', title: 'ipc (json)', short: 'json' },
    { key: 'interprocess-v8', title: 'ipc (v8)', short: 'v8' },
    { key: 'node-ipc', title: 'node-ipc' },
    { key: 'cp-json', title: 'cp json' },
    { key: 'cp-advanced', title: 'cp advanced' },
  ],
  // Every library at its best for the row: ours is the better of our two codecs, cp the better of
  // its two serializations (node-ipc has only JSON).
  own: ['interprocess', 'interprocess-v8'],
  counterparts: ['cp-json', 'cp-advanced'],
  counterpartTitle: 'cp',
  // Columns whose failure is shown in their column rather than failing the run.
  peers: ['node-ipc'],
  unavailable: () => ({ 'node-ipc': nodeIpcAvailable() }),
  rows: [
    row({
      id: 'channel/rate-64B',
      label: 'one-way messages of about 64 B (as JSON), each library paced by its own backpressure; msg/s at the receiver',
      test: 'rate',
      reporter: 'server',
      params: (s) => ({ count: s.small, messageBytes: 64 }),
      metrics: rateMetrics,
    }),
    row({
      id: 'channel/rate-64KiB',
      label: 'the same with 64 KiB messages',
      test: 'rate',
      reporter: 'server',
      params: (s) => ({ count: s.large, messageBytes: 64 * KiB }),
      metrics: largeRateMetrics,
    }),
    row({
      id: 'channel/rate-1MiB',
      label: 'the same with 1 MiB messages',
      test: 'rate',
      reporter: 'server',
      params: (s) => ({ count: s.huge, messageBytes: 1024 * KiB }),
      metrics: largeRateMetrics,
    }),
    row({
      id: 'channel/rpc-64B',
      label: 'request/response round trips of about 64 B, one outstanding',
      test: 'rpc',
      reporter: 'client',
      params: (s) => ({ warmup: s.rpcWarmup, rounds: s.rpcRounds, messageBytes: 64 }),
      metrics: rpcMetrics,
    }),
    row({
      id: 'channel/rpc-64KiB',
      label: 'request/response round trips of 64 KiB each way, one outstanding',
      test: 'rpc',
      reporter: 'client',
      params: (s) => ({ warmup: Math.round(s.rpcWarmup / 4), rounds: Math.round(s.rpcRounds / 4), messageBytes: 64 * KiB }),
      metrics: rpcMetrics,
    }),
    row({
      id: 'channel/rpc-1MiB',
      label: 'request/response round trips of 1 MiB each way, one outstanding',
      test: 'rpc',
      reporter: 'client',
      params: (s) => ({ warmup: s.hugeWarmup, rounds: s.hugeRounds, messageBytes: 1024 * KiB }),
      metrics: rpcMetrics,
    }),
    // The same with both processes on one CPU: without the cross-CPU wakeup (tens of µs on a VM,
    // whatever the library) the round trip is the libraries' own work.
    row({
      id: 'channel/rpc-64B-pinned',
      label: 'request/response round trips of about 64 B, one outstanding, both processes on CPU 0',
      test: 'rpc',
      reporter: 'client',
      pin: true,
      params: (s) => ({ warmup: s.rpcWarmup, rounds: s.rpcRounds, messageBytes: 64 }),
      metrics: rpcMetrics,
    }),
    row({
      id: 'channel/rpc-64KiB-pinned',
      label: 'request/response round trips of 64 KiB each way, one outstanding, both processes on CPU 0',
      test: 'rpc',
      reporter: 'client',
      pin: true,
      params: (s) => ({ warmup: Math.round(s.rpcWarmup / 4), rounds: Math.round(s.rpcRounds / 4), messageBytes: 64 * KiB }),
      metrics: rpcMetrics,
    }),
    row({
      id: 'channel/rpc-1MiB-pinned',
      label: 'request/response round trips of 1 MiB each way, one outstanding, both processes on CPU 0',
      test: 'rpc',
      reporter: 'client',
      pin: true,
      params: (s) => ({ warmup: s.hugeWarmup, rounds: s.hugeRounds, messageBytes: 1024 * KiB }),
      metrics: rpcMetrics,
    }),
  ],
};
