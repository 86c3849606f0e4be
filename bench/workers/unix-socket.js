// One side of a unix-socket measurement, run in its own process by the harness.
// Usage: node unix-socket.js <impl> <test> <role> <socket-path> <numbers...>
//   impl: interprocess (dist/) | unix-dgram | node-unix-socket (the npm peers)
//   test and numbers: as bench/c/unix_socket.c, which does the same in C.
// Each library is used the way its README says, with its own backpressure: interprocess awaits
// drain(); unix-dgram reports 'congestion' and the message is resent on 'writable';
// node-unix-socket calls back once each message is written (a window of them is kept in flight).
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { exitWhenOrphaned, fail, report } from '../lib/worker.js';

const [impl, test, role, socketPath, ...numbers] = process.argv.slice(2);
const [a, b, c] = numbers.map(Number);
exitWhenOrphaned();
const require = createRequire(import.meta.url);
// Sockets a server must keep: some peers' sockets are closed when collected.
const keep = [];

/**
 * The messages to send: `at(i)` is a SIZE-byte buffer starting with the sequence number i (uint32
 * LE), from a ring of RING buffers reused in turn, as the C sender reuses its batch: no sender
 * keeps more than RING messages in flight (interprocess: at most 2049 queued; node-unix-socket: a
 * window of 2048; unix-dgram sends synchronously), so a buffer is rewritten only once it is sent.
 */
const RING = 8192;
function numbered(size) {
  const slab = Buffer.alloc(RING * size);
  const ring = Array.from({ length: RING }, (_, i) => slab.subarray(i * size, (i + 1) * size));
  return {
    at(i) {
      const message = ring[i % RING];
      message.writeUInt32LE(i, 0);
      return message;
    },
  };
}

/**
 * Counts COUNT messages, timed from the first to the last; reports and exits. A peer that loses
 * messages never gets there: after IDLE_MS without one, it reports what arrived (and what was lost).
 */
const IDLE_MS = 3000;
function counter(count) {
  let got = 0;
  let first = 0n;
  let last = 0n;
  let lastSeq = -1;
  const done = () => report({ messages: got, ns: Number(last - first), lost: Math.max(count, lastSeq + 1) - got }, true);
  const idle = setInterval(() => {
    if (got > 0 && Number(process.hrtime.bigint() - last) / 1e6 > IDLE_MS) done();
  }, 500);
  idle.unref();
  return (data) => {
    last = process.hrtime.bigint();
    if (got === 0) first = last;
    got += 1;
    lastSeq = data.readUInt32LE(0);
    if (got === count) done();
  };
}

/** Fails the sender if it makes no progress for a while (a peer that stalls or lost its callbacks). */
function watchdog(progress) {
  let seen = -1;
  setInterval(() => {
    const now = progress();
    if (now === seen) fail(new Error(`sender stalled at ${now} messages`));
    seen = now;
  }, 5000).unref();
}

// dgram-pair-rate: the same, but the receiver connects back to its sender on the first message,
// as the two ends of a point-to-point channel (or a socket pair) are: then Linux does not cap the
// receiver's queue at net.unix.max_dgram_qlen (10), only the sender's buffer bounds the flow.
const paired = test === 'dgram-pair-rate';
const clientPath = `${socketPath}.client`;

const dgram = {
  async interprocess(isServer, count, size) {
    const { bindDatagram } = await import('../../dist/index.js');
    if (isServer) {
      const socket = await bindDatagram(socketPath);
      const onMessage = counter(count);
      socket.on('message', (message) => {
        if (paired && message.from) socket.connect(message.from);
        onMessage(message.data);
      });
      socket.on('error', fail);
      return report({ ready: true });
    }
    const socket = await bindDatagram(paired ? clientPath : null, { connect: socketPath });
    const messages = numbered(size);
    let last;
    for (let i = 0; i < count; i++) {
      if (socket.sendQueueLength >= 2048) await socket.drain();
      last = socket.send(messages.at(i));
    }
    await last;
    await socket.close();
  },
  async 'unix-dgram'(isServer, count, size) {
    const unix = require('unix-dgram');
    if (isServer) {
      const onMessage = counter(count);
      let connected = false;
      const socket = unix.createSocket('unix_dgram', (data, rinfo) => {
        if (paired && !connected) {
          connected = true;
          socket.connect(rinfo.path);
        }
        onMessage(data);
      });
      keep.push(socket);
      socket.on('error', fail);
      socket.bind(socketPath);
      return report({ ready: true });
    }
    const socket = unix.createSocket('unix_dgram');
    socket.on('error', fail);
    const messages = numbered(size);
    let i = 0;
    let congested = false;
    watchdog(() => i);
    socket.on('congestion', () => {
      congested = true; // this message was not sent: it is sent again on 'writable'
    });
    const pump = () => {
      congested = false;
      while (i < count) {
        socket.send(messages.at(i));
        if (congested) return;
        i += 1;
      }
      socket.close();
    };
    socket.on('writable', pump);
    socket.on('connect', pump);
    if (paired) socket.bind(clientPath);
    socket.connect(socketPath);
  },
  async 'node-unix-socket'(isServer, count, size) {
    const { DgramSocket } = require('node-unix-socket');
    if (isServer) {
      const onMessage = counter(count);
      const socket = new DgramSocket();
      keep.push(socket);
      socket.on('data', (data) => onMessage(data));
      socket.on('error', fail);
      socket.bind(socketPath);
      return report({ ready: true });
    }
    const socket = new DgramSocket();
    socket.on('error', fail);
    const messages = numbered(size);
    const WINDOW = 2048;
    let sent = 0;
    let done = 0;
    watchdog(() => done);
    const pump = () => {
      while (sent < count && sent - done < WINDOW) {
        socket.sendTo(messages.at(sent), 0, size, socketPath, onWrite);
        sent += 1;
      }
    };
    function onWrite(error) {
      if (error) fail(error);
      done += 1;
      if (done === count) socket.close();
      else if (sent - done < WINDOW / 2) pump();
    }
    pump();
  },
};

const seqpacket = {
  async interprocess(isServer, warmup, rounds, size) {
    const { listenUnix, connectUnix } = await import('../../dist/index.js');
    if (isServer) {
      const listener = await listenUnix(socketPath, { type: 'seqpacket' });
      listener.once('connection', (socket) => {
        socket.on('message', (message) => socket.send(message.data).catch(fail));
        socket.on('end', () => process.exit(0));
        socket.on('error', fail);
      });
      return report({ ready: true });
    }
    const socket = await connectUnix(socketPath, { type: 'seqpacket' });
    socket.on('error', fail);
    pingPong(warmup, rounds, size, (message) => socket.send(message).catch(fail), (onReply) => socket.on('message', onReply), () => socket.close());
  },
  async 'node-unix-socket'(isServer, warmup, rounds, size) {
    const { SeqpacketServer, SeqpacketSocket } = require('node-unix-socket');
    if (isServer) {
      const server = new SeqpacketServer();
      keep.push(server);
      server.on('connection', (socket) => {
        keep.push(socket);
        socket.on('data', (data) => socket.write(data));
        socket.on('end', () => process.exit(0));
        socket.on('error', fail);
      });
      server.on('error', fail);
      server.listen(socketPath);
      return report({ ready: true });
    }
    const socket = new SeqpacketSocket();
    socket.on('error', fail);
    socket.connect(socketPath, () => {
      // Not destroyed from inside its own 'data' callback: node-unix-socket 0.2.7 panics there
      // ("emitter already unreferenced"); the process exit closes it.
      pingPong(warmup, rounds, size, (message) => socket.write(message), (onReply) => socket.on('data', onReply), () => {});
    });
  },
};

// One message out, its echo back, then the next; each round trip timed.
function pingPong(warmup, rounds, size, send, onReply, close) {
  const message = Buffer.alloc(size, 'p');
  const samples = new Array(rounds);
  let round = 0;
  let start = performance.now();
  onReply(() => {
    const end = performance.now();
    if (round >= warmup) samples[round - warmup] = Math.round((end - start) * 1e6);
    round += 1;
    if (round === warmup + rounds) {
      close();
      report({ samples_ns: samples }, true);
      return;
    }
    start = performance.now();
    send(message);
  });
  send(message);
}

const tests = { 'dgram-rate': dgram, 'dgram-pair-rate': dgram, 'seqpacket-latency': seqpacket };
// A server lives until it reports (node-unix-socket's sockets do not keep the loop alive).
if (role === 'server') setInterval(() => {}, 1 << 30);
const run = tests[test]?.[impl];
if (!run) fail(new Error(`no ${test} for ${impl}`));
else await run(role === 'server', a, b, c).catch(fail);
