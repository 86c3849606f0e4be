// The measurement loops on Node streams, shared by the pipe and FIFO workers (the same loops as
// bench/workers/local-socket.js and bench/c/io.h, so that every row measures alike).
import { performance } from 'node:perf_hooks';

/** Reads and discards `total` bytes; resolves { bytes, ns }, timed from the first byte to the last. */
export function receiveAll(readable, total) {
  return new Promise((resolve, reject) => {
    let got = 0;
    let first = 0n;
    readable.on('data', (chunk) => {
      if (got === 0) first = process.hrtime.bigint();
      got += chunk.length;
      if (got >= total) resolve({ bytes: got, ns: Number(process.hrtime.bigint() - first) });
    });
    readable.on('error', reject);
    readable.on('end', () => reject(new Error(`end of stream after ${got} of ${total} bytes`)));
  });
}

/** Writes `total` bytes in `chunkBytes` writes (the same buffer each time), honouring backpressure, then ends. */
export function sendAll(writable, total, chunkBytes) {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(chunkBytes, 'x');
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!writable.write(chunk)) return writable.once('drain', pump);
      }
      writable.end(resolve);
    };
    writable.on('error', reject);
    pump();
  });
}

/** Sends back whatever arrives until `readable` ends; then ends `writable`. */
export function echo(readable, writable) {
  return new Promise((resolve, reject) => {
    readable.on('data', (chunk) => writable.write(chunk));
    readable.on('error', reject);
    writable.on('error', reject);
    readable.on('end', () => writable.end(resolve));
  });
}

/**
 * Ping-pong: one message out, the whole echo back, then the next; resolves the round-trip times
 * in ns of the `rounds` after `warmup`.
 */
export function pingPong(readable, writable, warmup, rounds, messageBytes) {
  return new Promise((resolve, reject) => {
    const message = Buffer.alloc(messageBytes, 'p');
    const samples = new Array(rounds);
    let round = 0;
    let pending = messageBytes;
    let start = performance.now();
    readable.on('data', (chunk) => {
      pending -= chunk.length;
      if (pending > 0) return;
      const end = performance.now();
      if (round >= warmup) samples[round - warmup] = Math.round((end - start) * 1e6);
      round += 1;
      if (round === warmup + rounds) return resolve(samples);
      pending = messageBytes;
      start = performance.now();
      writable.write(message);
    });
    readable.on('error', reject);
    readable.on('end', () => reject(new Error(`end of stream after ${round} round trips`)));
    writable.on('error', reject);
    writable.write(message);
  });
}
