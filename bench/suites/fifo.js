// FIFO files: interprocess's createFifo/openFifoReader/openFifoWriter, against Node's fs streams
// on the same FIFOs (what Node users do today), against open/read/write in C. FIFOs have names,
// so the two sides are independent processes, as for local sockets.
import { fileURLToPath } from 'node:url';
import { percentile } from '../lib/stats.js';

const WORKER = fileURLToPath(new URL('../workers/fifo.js', import.meta.url));
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// Full moves 1 GiB, not 2 like the other rows: node's fs streams manage about 0.7 GB/s here.
const SIZES = {
  quick: { throughputBytes: 256 * MiB, latencyWarmup: 1000, latencyRounds: 2000 },
  full: { throughputBytes: 1 * GiB, latencyWarmup: 2000, latencyRounds: 20000 },
};
const CHUNK_BYTES = 64 * KiB;
const MESSAGE_BYTES = 64;

/**
 * A row of this suite: `test` and the values of `params` (in order) are the arguments both
 * sides get (see bench/c/fifo.c); `reporter` is the side that measures.
 */
function row({ id, label, test, reporter, params, metrics }) {
  return {
    id,
    label,
    pin: false,
    metrics,
    params: (quick) => params(quick ? SIZES.quick : SIZES.full),
    plan(impl, { tempPath, quick, cBinary }) {
      const numbers = Object.values(this.params(quick)).map(String);
      const command = (role) => {
        const args = [test, role, tempPath, ...numbers]; // the FIFOs are tempPath plus a suffix
        return impl === 'c' ? [cBinary('fifo'), ...args] : [process.execPath, WORKER, impl, ...args];
      };
      return { server: command('server'), client: command('client'), reporter };
    },
  };
}

export default {
  name: 'fifo',
  nodeCounterpart: 'fs.createReadStream / fs.createWriteStream on the FIFOs (made with mkfifo(1))',
  rows: [
    row({
      id: 'fifo/throughput',
      label: 'throughput, 64 KiB writes, one FIFO (the kernel\'s 64 KiB buffer)',
      test: 'throughput',
      reporter: 'server', // the reader, timed from its first byte to its last
      params: (s) => ({ totalBytes: s.throughputBytes, chunkBytes: CHUNK_BYTES }),
      metrics: [{ key: 'throughput', unit: 'GB/s', better: 'higher', within: 0, from: (r) => r.bytes / r.ns }],
    }),
    row({
      id: 'fifo/latency',
      label: 'ping-pong 64 B, one FIFO each way',
      test: 'latency',
      reporter: 'client',
      params: (s) => ({ warmup: s.latencyWarmup, rounds: s.latencyRounds, messageBytes: MESSAGE_BYTES }),
      metrics: [
        { key: 'p50', unit: 'p50 µs', better: 'lower', within: 0.1, from: (r) => percentile(r.samples_ns, 50) / 1000 },
        { key: 'p99', unit: 'p99 µs', better: 'lower', within: null, from: (r) => percentile(r.samples_ns, 99) / 1000 },
      ],
    }),
  ],
};
