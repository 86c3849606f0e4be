/**
 * Copying between stdin/stdout and a connection, and when to stop: socat's -t rule, made safe
 * for uploads. Once the peer has ended, stdin goes on while it keeps coming; once it has been
 * idle for `linger` ms (0.5 s by default, socat's -t), our side ends and the command exits, so a
 * terminal or a stdin that never ends does not keep it running, and a file still being sent is
 * not cut (socat's -t would cut it). The end of stdin only ends our side (a half-close): the
 * peer's answer is still read to its end, however long it takes (socat's -t runs from either end,
 * so its `connect < request` may miss a slow reply).
 */
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { type Framing, encodeLine, lines, reads } from './framing.js';
import type { ByteConnection, MessageConnection } from './library.js';

/** socat's -t default. */
export const DEFAULT_LINGER_MS = 500;

// A peer that went away while we were still sending: not a failure of ours.
const PEER_GONE = new Set(['EPIPE', 'ECONNRESET', 'ENOTCONN', 'ERR_SOCKET_CLOSED', 'ERR_INTERPROCESS_CLOSED', 'ERR_STREAM_PREMATURE_CLOSE']);
const peerGone = (error: unknown) => PEER_GONE.has((error as { code?: string }).code ?? '');

// Stdin goes as one message per read (--framing raw), cut to this size: socat's default block
// size, so socat reads ours whole. macOS refuses Unix datagrams over net.local.dgram.maxdgram
// (2048 by default).
export const MESSAGE_MAX = process.platform === 'darwin' ? 2048 : 8192;

/** Stdin as messages, framed. */
export function stdinMessages(framing: Framing): AsyncGenerator<Buffer> {
  const input = process.stdin as AsyncIterable<Buffer>;
  return framing === 'line' ? lines(input) : reads(input, MESSAGE_MAX);
}

/** Writes a message to stdout, framed, waiting while stdout is full. */
export async function writeMessage(message: Buffer, framing: Framing): Promise<void> {
  if (!process.stdout.write(framing === 'line' ? encodeLine(message) : message)) await once(process.stdout, 'drain');
}

/** Stdin is of no more use, and a terminal's must not keep the process alive. */
function dropStdin(): void {
  process.stdin.unpipe();
  process.stdin.destroy();
}

/**
 * A byte connection: stdin to it, it to stdout, until both directions are done, or until stdin has
 * been idle for `linger` ms after the peer's end. On a connection with no half-close (a Windows
 * pipe), the end of stdin closes it once the peer has been quiet for `linger` ms, so what the peer
 * still sends arrives.
 */
export function shuttleBytes(conn: ByteConnection, linger: number): Promise<void> {
  const { stream, noHalfClose } = conn;
  return new Promise((resolve, reject) => {
    let peerEnded = false;
    let stdinEnded = false;
    let failure: unknown = null;
    const timers: NodeJS.Timeout[] = [];
    const later = (ms: number, fn: () => void) => timers.push(setTimeout(fn, ms));
    stream.on('error', (error) => {
      if (!(peerEnded && peerGone(error))) failure ??= error;
    });
    stream.on('close', () => {
      for (const timer of timers) clearTimeout(timer);
      dropStdin();
      if (failure) reject(failure);
      else resolve();
    });
    let lastHeard = Date.now();
    stream.on('data', () => (lastHeard = Date.now()));
    stream.pipe(process.stdout, { end: false });
    // Stdin makes progress when it gives data or the peer takes what waited (stdin is paused meanwhile).
    let lastProgress = Date.now();
    const progress = () => (lastProgress = Date.now());
    process.stdin.on('data', progress);
    stream.on('drain', progress);
    process.stdin.once('end', () => (stdinEnded = true));
    stream.once('end', () => {
      peerEnded = true;
      lastProgress = Date.now();
      const endIfIdle = () => {
        if (stdinEnded) return; // its end ends our side
        const idle = Date.now() - lastProgress;
        if (stream.writableNeedDrain || idle < linger) return void later(stream.writableNeedDrain ? linger : linger - idle, endIfIdle);
        process.stdin.unpipe(stream);
        stream.end();
      };
      endIfIdle();
    });
    if (!noHalfClose) return void process.stdin.pipe(stream);
    process.stdin.pipe(stream, { end: false });
    process.stdin.once('end', () => {
      const endWhenQuiet = () => {
        const quiet = Date.now() - lastHeard;
        if (quiet >= linger || peerEnded) stream.end();
        else later(linger - quiet, endWhenQuiet);
      };
      lastHeard = Math.max(lastHeard, Date.now());
      endWhenQuiet();
    });
  });
}

/** A FIFO's reading end to stdout, until its last writer closes. */
export async function readToStdout(readable: Readable): Promise<void> {
  try {
    for await (const chunk of readable as AsyncIterable<Buffer>) {
      if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
    }
  } finally {
    dropStdin();
  }
}

/** Stdin to a FIFO's writing end, then closes it. */
export function writeFromStdin(writable: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    writable.on('error', reject);
    writable.on('close', resolve);
    process.stdin.pipe(writable);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A message connection: stdin to it as messages (then our end), its messages to stdout, framed.
 * Done when both directions are, or once stdin has been idle for `linger` ms after the peer's end;
 * a failure either way ends both.
 */
export async function shuttleMessages(conn: MessageConnection, framing: Framing, linger: number): Promise<void> {
  let stopped = false;
  let lastHeard = Date.now();
  // Stdin makes progress when it gives a message or the peer takes one (stdin waits meanwhile).
  let lastProgress = Date.now();
  let inSend = false;
  const sending = (async () => {
    try {
      for await (const message of stdinMessages(framing)) {
        if (stopped) return;
        inSend = true;
        await conn.send(message);
        inSend = false;
        lastProgress = Date.now();
      }
      if (conn.halfClose) return await conn.end();
      // No half-close: close once the peer has been quiet for `linger`, so its last words arrive.
      for (lastHeard = Math.max(lastHeard, Date.now()); !stopped && !conn.closed() && Date.now() - lastHeard < linger; ) {
        await sleep(linger - (Date.now() - lastHeard));
      }
      await conn.close();
    } catch (error) {
      if (!stopped && !peerGone(error)) throw error;
    }
  })();
  const receiving = (async () => {
    for await (const data of conn.messages()) {
      lastHeard = Date.now();
      await writeMessage(data, framing);
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const idleAfterPeerEnd = receiving.then(
    () =>
      new Promise<void>((resolve) => {
        lastProgress = Date.now();
        const resolveIfIdle = () => {
          const idle = Date.now() - lastProgress;
          if (!inSend && idle >= linger) return resolve();
          timer = setTimeout(resolveIfIdle, inSend ? linger : linger - idle);
        };
        resolveIfIdle();
      }),
  );
  try {
    await Promise.race([Promise.all([sending, receiving]), idleAfterPeerEnd]);
  } finally {
    stopped = true;
    clearTimeout(timer);
    dropStdin();
    await conn.close();
  }
}

/** Stdin to a datagram socket, framed, then closes it. */
export async function sendMessages(conn: { send(message: Buffer): Promise<void>; close(): Promise<void> }, framing: Framing): Promise<void> {
  try {
    for await (const message of stdinMessages(framing)) await conn.send(message);
  } finally {
    await conn.close();
  }
}
