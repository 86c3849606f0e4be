// One pipe measurement. A pipe exists only between a process and the children it hands an end
// to, so the harness starts one process (the parent), which makes the pipes and spawns its peer
// (this script again, role "peer"). The peer inherits the parent's stdout: its report goes
// straight to the harness. The parent exits with the peer's exit code.
// Usage: node pipe.js <impl> <test> <role> <numbers...>
//   impl: interprocess: pipe() and spawnWith() from dist/; the peer takes its ends back with
//           PipeReceiver.fromFd(3) / PipeSender.fromFd(4)
//         node: child_process.spawn with stdio 'pipe' (socketpairs); the peer uses
//           process.stdin / process.stdout
//   role: parent | peer
//   test: throughput TOTAL_BYTES CHUNK_BYTES PIPE_BYTES: the parent sends, the peer receives
//           and reports (timed at the receiver, as every throughput row); the interprocess peer
//           reads with PipeReceiver.fromFd(3, { onChunk, readBuffer: 256 KiB }), node's with
//           process.stdin's 'data' events
//         throughput-stream: the same, the interprocess peer reading 'data' events too
//         latency WARMUP ROUNDS MESSAGE_BYTES PIPE_BYTES: the peer echoes, the parent reports
//   PIPE_BYTES: interprocess's pipe({ size }); 0 calls pipe() with its default. node ignores it.
// bench/c/pipe.c does the same in C.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { echo, pingPong, receiveAll, sendAll } from '../lib/streams.js';
import { exitWhenOrphaned, fail, report } from '../lib/worker.js';

const [impl, test, role, ...numbers] = process.argv.slice(2);
const [a, b, c] = numbers.map(Number);
const pipeBytes = Number(numbers.at(-1));
const DIST = '../../dist/index.js';
// The read buffer of the interprocess reader: 256 KiB, the size of pipe()'s default pipe buffer.
const READ_BUFFER = 256 * 1024;

// The node peer's stdin is its data channel; every other process watches stdin for the harness.
exitWhenOrphaned({ watchStdin: !(impl === 'node' && role === 'peer') });

/** Spawns the peer; returns it with the parent's ends: `toPeer` and (latency) `fromPeer`. */
async function spawnPeer() {
  const argv = [fileURLToPath(import.meta.url), impl, test, 'peer', ...numbers];
  if (impl === 'interprocess') {
    const { pipe, spawnWith } = await import(DIST);
    const options = pipeBytes > 0 ? { size: pipeBytes } : {};
    const down = pipe(options); // parent -> peer
    const up = test === 'latency' ? pipe(options) : null; // peer -> parent
    const fds = up ? { 3: down.receiver, 4: up.sender } : { 3: down.receiver };
    const peer = spawnWith(process.execPath, argv, { fds, stdio: 'inherit' });
    return { peer, toPeer: down.sender, fromPeer: up?.receiver };
  }
  if (impl === 'node') {
    const peer = spawn(process.execPath, argv, { stdio: ['pipe', test === 'latency' ? 'pipe' : 'inherit', 'inherit'] });
    return { peer, toPeer: peer.stdin, fromPeer: peer.stdout };
  }
  throw new Error(`unknown implementation ${impl}`);
}

async function parent() {
  const { peer, toPeer, fromPeer } = await spawnPeer();
  const peerExit = new Promise((resolve, reject) => {
    peer.once('error', reject);
    peer.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
  if (test.startsWith('throughput')) {
    await sendAll(toPeer, a, b);
  } else {
    const samples = await pingPong(fromPeer, toPeer, a, b, c);
    toPeer.end(); // the peer sees the end and exits
    await report({ samples_ns: samples });
  }
  process.exit(await peerExit);
}

/**
 * interprocess's bulk reader: PipeReceiver.fromFd(3, { onChunk }) reads into one reused buffer
 * (READ_BUFFER bytes) and hands out views of it; the same counting as receiveAll().
 */
function receiveAllReused(PipeReceiver, total) {
  return new Promise((resolve, reject) => {
    let got = 0;
    let first = 0n;
    const input = PipeReceiver.fromFd(3, {
      readBuffer: READ_BUFFER,
      onChunk(chunk) {
        if (got === 0) first = process.hrtime.bigint();
        got += chunk.length;
        if (got >= total) resolve({ bytes: got, ns: Number(process.hrtime.bigint() - first) });
      },
    });
    input.on('error', reject);
    input.on('end', () => reject(new Error(`end of stream after ${got} of ${total} bytes`)));
  });
}

async function peer() {
  const { PipeReceiver, PipeSender } = impl === 'interprocess' ? await import(DIST) : {};
  if (test === 'throughput') {
    if (impl === 'interprocess') await report(await receiveAllReused(PipeReceiver, a), true);
    else await report(await receiveAll(process.stdin, a), true);
    return;
  }
  if (test === 'throughput-stream') {
    await report(await receiveAll(impl === 'interprocess' ? PipeReceiver.fromFd(3) : process.stdin, a), true);
    return;
  }
  const input = impl === 'interprocess' ? PipeReceiver.fromFd(3) : process.stdin;
  {
    await echo(input, impl === 'interprocess' ? PipeSender.fromFd(4) : process.stdout);
    process.exit(0);
  }
}

if (!['throughput', 'throughput-stream', 'latency'].includes(test)) fail(new Error(`unknown test ${test}`));
await (role === 'parent' ? parent() : peer()).catch(fail);
