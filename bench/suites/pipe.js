// Unnamed pipes: interprocess's pipe() handed to a child with spawnWith(), against Node's
// child_process stdio pipes (socketpairs), against pipe() + fork() in C. A pipe can only be
// handed down, so each measurement is one process (the parent) that spawns its own peer.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_PIPE_SIZE } from '../../dist/index.js';
import { percentile } from '../lib/stats.js';

const WORKER = fileURLToPath(new URL('../workers/pipe.js', import.meta.url));
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

const SIZES = {
  quick: { throughputBytes: 256 * MiB, latencyWarmup: 1000, latencyRounds: 2000 },
  full: { throughputBytes: 2 * GiB, latencyWarmup: 2000, latencyRounds: 20000 },
};
const CHUNK_BYTES = 64 * KiB;
const MESSAGE_BYTES = 64;
const KERNEL_PIPE_BYTES = 64 * KiB; // Linux's default pipe buffer

/** What pipe() gives by default: DEFAULT_PIPE_SIZE, capped by the system's maximum (Linux). */
function defaultPipeBytes() {
  try {
    return Math.min(DEFAULT_PIPE_SIZE, Number.parseInt(fs.readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'), 10) || Infinity);
  } catch {
    return DEFAULT_PIPE_SIZE;
  }
}

/**
 * A row of this suite: `test` and the values of `params` (in order, pipeBytes last) are the
 * arguments of bench/workers/pipe.js and bench/c/pipe.c. `pipeBytes(pipeSize)` is the pipe buffer
 * of the interprocess and C columns, or null for "pipe()'s default" (the C column then gets that
 * size, and interprocess calls pipe() without a size, measuring its real default).
 */
function row({ id, label, test, params, metrics, pin = false, pipeBytes = (pipeSize) => pipeSize }) {
  return {
    id,
    label,
    pin,
    metrics,
    params: (quick, { pipeSize = null } = {}) => ({ ...params(quick ? SIZES.quick : SIZES.full), pipeBytes: pipeBytes(pipeSize) ?? defaultPipeBytes() }),
    plan(impl, { quick, pipeSize, cBinary }) {
      const values = this.params(quick, { pipeSize });
      if (impl === 'interprocess' && pipeBytes(pipeSize) === null) values.pipeBytes = 0; // 0: pipe() as is
      const numbers = Object.values(values).map(String);
      const parent = impl === 'c' ? [cBinary('pipe'), test.replace('-stream', ''), ...numbers] : [process.execPath, WORKER, impl, test, 'parent', ...numbers];
      return { parent };
    },
  };
}

const throughputMetric = (within) => ({ key: 'throughput', unit: 'GB/s', better: 'higher', within, from: (r) => r.bytes / r.ns });
const latencyMetrics = [
  { key: 'p50', unit: 'p50 µs', better: 'lower', within: 0.1, from: (r) => percentile(r.samples_ns, 50) / 1000 },
  { key: 'p99', unit: 'p99 µs', better: 'lower', within: null, from: (r) => percentile(r.samples_ns, 99) / 1000 },
];
const latencyParams = (s) => ({ warmup: s.latencyWarmup, rounds: s.latencyRounds, messageBytes: MESSAGE_BYTES });

export default {
  name: 'pipe',
  nodeCounterpart: "child_process.spawn with stdio 'pipe' (socketpairs): the parent writes child.stdin, the child reads process.stdin (and echoes to process.stdout)",
  rows: [
    row({
      id: 'pipe/throughput',
      label: 'throughput, 64 KiB writes, parent to child (pipe buffer: pipe()\'s default, or --pipe-size)',
      test: 'throughput',
      params: (s) => ({ totalBytes: s.throughputBytes, chunkBytes: CHUNK_BYTES }),
      metrics: [throughputMetric(0)], // the target: at least node's
    }),
    row({
      id: 'pipe/throughput-stream',
      label: 'the same, interprocess read through \'data\' events, Node\'s stream path (info: what onChunk buys)',
      test: 'throughput-stream',
      params: (s) => ({ totalBytes: s.throughputBytes, chunkBytes: CHUNK_BYTES }),
      metrics: [throughputMetric(null)],
    }),
    row({
      id: 'pipe/throughput-64KiB',
      label: 'the same with the kernel\'s default 64 KiB pipe buffer (info: what F_SETPIPE_SZ buys)',
      test: 'throughput',
      params: (s) => ({ totalBytes: s.throughputBytes, chunkBytes: CHUNK_BYTES }),
      metrics: [throughputMetric(null)],
      pipeBytes: () => KERNEL_PIPE_BYTES,
    }),
    row({
      id: 'pipe/latency',
      label: 'ping-pong 64 B, one pipe each way',
      test: 'latency',
      params: latencyParams,
      metrics: latencyMetrics,
    }),
    row({
      id: 'pipe/latency-pinned',
      label: 'ping-pong 64 B, one pipe each way, both on CPU 0',
      test: 'latency',
      params: latencyParams,
      metrics: latencyMetrics,
      pin: true,
    }),
  ],
};
