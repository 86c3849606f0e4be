// One side of a FIFO measurement, run in its own process by the harness.
// Usage: node fifo.js <impl> <test> <role> <base-path> <numbers...>
//   impl: interprocess: createFifo, openFifoReader, openFifoWriter from dist/
//         node: fs.createReadStream / fs.createWriteStream, what Node users do today (Node has
//           no mkfifo: the FIFOs are made with mkfifo(1))
//   test, role, base-path and numbers: as bench/c/fifo.c, which does the same in C. The server
//   creates the FIFOs and prints {"ready":true}; both sides open BASE.up before BASE.down.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { echo, pingPong, receiveAll, sendAll } from '../lib/streams.js';
import { exitWhenOrphaned, fail, report } from '../lib/worker.js';

const [impl, test, role, base, ...numbers] = process.argv.slice(2);
const [a, b, c] = numbers.map(Number);
exitWhenOrphaned();

// Each side uses one library end to end.
async function library() {
  if (impl === 'node') {
    return {
      create: (path) => execFileSync('mkfifo', ['-m', '600', path]),
      // Both open in the background (a thread-pool thread waits for the other side) and buffer meanwhile.
      reader: async (path) => fs.createReadStream(path),
      writer: async (path) => fs.createWriteStream(path),
    };
  }
  if (impl === 'interprocess') {
    const { createFifo, openFifoReader, openFifoWriter } = await import('../../dist/index.js');
    // The writer waits for its reader (the other process may not have opened it yet), as Node's
    // createWriteStream does in the thread pool.
    return { create: createFifo, reader: async (path) => openFifoReader(path), writer: (path) => openFifoWriter(path, { wait: true }) };
  }
  throw new Error(`unknown implementation ${impl}`);
}

async function server(lib) {
  if (test === 'throughput') {
    await lib.create(`${base}.data`);
    const input = await lib.reader(`${base}.data`);
    await report({ ready: true });
    await report(await receiveAll(input, a), true);
  } else {
    await lib.create(`${base}.up`);
    await lib.create(`${base}.down`);
    const input = await lib.reader(`${base}.up`);
    await report({ ready: true });
    await echo(input, await lib.writer(`${base}.down`));
    process.exit(0);
  }
}

async function client(lib) {
  if (test === 'throughput') {
    await sendAll(await lib.writer(`${base}.data`), a, b);
    process.exit(0);
  } else {
    const output = await lib.writer(`${base}.up`);
    const input = await lib.reader(`${base}.down`);
    const samples = await pingPong(input, output, a, b, c);
    output.end(); // the server sees the end and exits
    await report({ samples_ns: samples }, true);
  }
}

if (test !== 'throughput' && test !== 'latency') fail(new Error(`unknown test ${test}`));
const lib = await library().catch(fail);
await (role === 'server' ? server(lib) : client(lib)).catch(fail);
