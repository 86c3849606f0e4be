/**
 * The `interprocess` command: info, listen, connect, bench. Exit codes: 0 success, 1 failure
 * (the message says what and why), 2 bad usage.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { InterprocessError } from '../errors.js';
import { createFifo, openFifoReader, openFifoWriter } from '../fifo/fifo.js';
import { connect, connectWithRetry } from '../local-socket/connect.js';
import { listen } from '../local-socket/listener.js';
import { type LocalSocketName, supportedNameKinds } from '../local-socket/name.js';
import { nativeStatus } from '../native/addon.js';
import { connectNamedPipe, listenNamedPipe, type MessagePipe } from '../named-pipe/index.js';
import { isWindows } from '../platform.js';
import { signals } from '../signal/signal.js';
// Through the index: its import order settles the socket/descriptor module cycle.
import { type UnixSocket, bindDatagram, connectUnix, listenUnix } from '../unix-socket/index.js';
import { type Address, ADDRESS_HELP, parseAddress } from './address.js';
import { renderSvg } from './svg.js';

const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

const HELP: Record<string, string> = {
  main: `Usage: interprocess <command> [options]

Commands:
  info                 what this platform supports, and whether the native addon loaded
  listen ADDRESS       wait for one peer, then copy stdin to it and it to stdout
  connect ADDRESS      connect to a peer, then copy stdin to it and it to stdout
  bench                run the benchmarks (from a source checkout)

Run 'interprocess <command> --help' for a command's options.

${ADDRESS_HELP}`,
  info: `Usage: interprocess info [--json]

Prints the platform, the local socket name kinds, the native addon's status, and which signals
can be caught here.`,
  listen: `Usage: interprocess listen ADDRESS [--mode OCTAL]

Local socket: listens, takes the first connection, copies stdin to it and it to stdout, and exits
when the peer ends. seqpacket: the same, with messages (stdin goes one message per read, each
message received is written out). FIFO: creates it if missing (mode default 600), copies what
writers send to stdout until the last writer closes. dgram: binds there and writes out each
datagram received, in order, until interrupted (Ctrl-C or SIGTERM; the socket file is removed).

  --mode OCTAL   permissions of the socket file or FIFO, e.g. 600

${ADDRESS_HELP}`,
  connect: `Usage: interprocess connect ADDRESS [--wait] [--timeout MS]

Local socket: connects, copies stdin to the peer and the peer to stdout, and exits when both are
done. seqpacket: the same, with messages. FIFO: opens it for writing (waiting for a reader) and
copies stdin into it. dgram: sends stdin as datagrams (one per read, up to 8 KiB each, as socat
does) to the socket bound there, and exits at the end of stdin; it receives no replies.

  --wait         keep trying until a listener (FIFO reader, bound datagram socket) appears
  --timeout MS   give up after MS milliseconds

${ADDRESS_HELP}`,
  bench: `Usage: interprocess bench [--quick] [--only TEXT] [--json FILE] [--svg FILE]

Runs the benchmark rows on this machine with a progress bar and prints the table. Needs a source
checkout of interprocess (the published package does not ship the benchmarks).

  --quick        short runs, a smoke check
  --only TEXT    only rows whose id contains TEXT
  --json FILE    also write the results as JSON
  --svg FILE     also write a chart of interprocess against Node core as SVG`,
};

class UsageError extends Error {}

function options(args: string[], spec: Record<string, { type: 'string' | 'boolean' }>): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args, options: { ...spec, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function parseMode(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-7]{3,4}$/.test(text)) throw new UsageError(`--mode takes an octal mode such as 600; got ${JSON.stringify(text)}`);
  return Number.parseInt(text, 8);
}

function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`--timeout takes milliseconds; got ${JSON.stringify(text)}`);
  return value;
}

function oneAddress(positionals: string[], command: string): Address {
  if (positionals.length !== 1) throw new UsageError(`${command} takes exactly one ADDRESS\n\n${HELP[command]}`);
  try {
    return parseAddress(positionals[0]!);
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_INVALID_ARG_VALUE') throw new UsageError(`${(error as Error).message}\n\n${ADDRESS_HELP}`);
    throw error;
  }
}

/**
 * Copies stdin to `writable` and `readable` to stdout. Resolves once both directions are done:
 * the peer has ended (or, for a write-only peer, taken all of stdin) and all of stdin has been
 * sent; a peer that goes away entirely ends it too.
 */
/** How long the peer of a Windows pipe must be quiet, once our stdin has ended, before we close. */
const PIPE_LINGER_MS = 500;

/**
 * Copies the peer to stdout and stdin to the peer. `noHalfClose`: the connection is a Windows
 * named pipe, where ending our side closes the pipe (libuv ends it 50 ms after the shutdown), so
 * whatever the peer still sends would be lost: once stdin ends we go on receiving until the peer
 * has been quiet for PIPE_LINGER_MS, and only then end (as socat's -t).
 */
function shuttle(readable: NodeJS.ReadableStream | null, writable: NodeJS.WritableStream | null, noHalfClose = false): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = (readable ?? writable) as NodeJS.EventEmitter;
    stream.on('error', reject);
    stream.on('close', () => {
      process.stdin.unpipe();
      process.stdin.destroy(); // nothing left to send to
      resolve();
    });
    let lastHeard = Date.now();
    if (readable) {
      readable.on('data', () => (lastHeard = Date.now()));
      readable.pipe(process.stdout, { end: false });
    }
    if (!writable) return;
    if (!noHalfClose || !readable) return void process.stdin.pipe(writable);
    process.stdin.pipe(writable, { end: false });
    process.stdin.once('end', () => {
      const linger = () => {
        const quiet = Date.now() - lastHeard;
        if (quiet >= PIPE_LINGER_MS) writable.end();
        else setTimeout(linger, PIPE_LINGER_MS - quiet);
      };
      lastHeard = Math.max(lastHeard, Date.now());
      linger();
    });
  });
}

// Stdin goes as one message per read, cut to this size: socat's default block size, so socat
// reads ours whole. macOS refuses Unix datagrams over net.local.dgram.maxdgram (2048 by default).
const MESSAGE_MAX = process.platform === 'darwin' ? 2048 : 8192;

/** Stdin as messages: one per read, cut to MESSAGE_MAX. */
async function* stdinMessages(): AsyncGenerator<Buffer> {
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    for (let at = 0; at < chunk.length; at += MESSAGE_MAX) yield chunk.subarray(at, at + MESSAGE_MAX);
  }
}

/** Writes to stdout, waiting while it is full: messages must not pile up in memory. */
async function toStdout(data: Buffer): Promise<void> {
  if (!process.stdout.write(data)) await once(process.stdout, 'drain');
}

// A peer that went away while we were still sending: not a failure of ours.
const PEER_GONE = new Set(['EPIPE', 'ECONNRESET', 'ENOTCONN', 'ERR_SOCKET_CLOSED']);

/**
 * A seqpacket connection: stdin to the peer as messages (then end()), the peer's messages to
 * stdout. Done when both directions are; a peer gone entirely stops the sending, and a failure
 * either way ends both.
 */
/** What shuttleMessages needs of a message socket or pipe. */
interface MessageEnd {
  send(message: Buffer): Promise<void>;
  /** Our last message is sent: a seqpacket socket shuts down its side; a pipe (no half-close) does nothing. */
  finish(): Promise<void>;
  messages(): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

const seqpacketEnd = (socket: UnixSocket): MessageEnd => ({
  send: (message) => socket.send(message),
  finish: () => socket.end(),
  messages: async function* () {
    for await (const { data } of socket) yield data;
  },
  close: () => socket.close(),
});

/** A message-mode named pipe has no half-close either: see shuttle(). */

function pipeEnd(pipe: MessagePipe): MessageEnd {
  let lastHeard = Date.now();
  return {
    send: (message) => pipe.send(message),
    finish: async () => {
      lastHeard = Math.max(lastHeard, Date.now());
      while (pipe.open && Date.now() - lastHeard < PIPE_LINGER_MS) {
        await new Promise((resolve) => setTimeout(resolve, PIPE_LINGER_MS - (Date.now() - lastHeard)));
      }
      await pipe.close();
    },
    messages: async function* () {
      for await (const message of pipe) {
        lastHeard = Date.now();
        yield message;
      }
    },
    close: () => pipe.close(),
  };
}

async function shuttleMessages(end: MessageEnd): Promise<void> {
  const sending = (async () => {
    try {
      for await (const message of stdinMessages()) await end.send(message);
      await end.finish();
    } catch (error) {
      if (!PEER_GONE.has((error as { code?: string }).code ?? '')) throw error;
    }
  })();
  const receiving = (async () => {
    for await (const data of end.messages()) await toStdout(data);
  })();
  try {
    await Promise.all([sending, receiving]);
  } finally {
    process.stdin.destroy(); // nothing more to send, and a terminal's stdin must not keep us alive
    await end.close();
  }
}

/** Bound to `name`, prints each datagram received until SIGINT/SIGTERM (datagrams have no end). */
async function receiveDatagrams(name: LocalSocketName, mode: number | undefined): Promise<void> {
  const socket = await bindDatagram(name, mode === undefined ? {} : { mode });
  process.stderr.write(`receiving datagrams on ${name}\n`);
  const stop = () => void socket.close(); // and its socket file with it
  process.once('SIGINT', stop).once('SIGTERM', stop);
  for (;;) {
    let message;
    try {
      message = await socket.receive();
    } catch (error) {
      process.stderr.write(`interprocess listen: ${(error as Error).message}\n`); // one bad datagram, not the end
      continue;
    }
    if (message === null) return;
    await toStdout(message.data);
  }
}

/** Sends stdin as datagrams to `name`, then exits. Unbound: there are no replies to receive. */
async function sendDatagrams(name: LocalSocketName, retry: { wait: boolean; timeout?: number }): Promise<void> {
  const socket = await connectWithRetry(name, retry, () => bindDatagram(null, { connect: name }));
  try {
    for await (const message of stdinMessages()) await socket.send(message);
  } finally {
    await socket.close();
  }
}

async function info(args: string[]): Promise<void> {
  const { values } = options(args, { json: { type: 'boolean' } });
  if (values.help) return void console.log(HELP.info);
  const report = {
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    native: nativeStatus(),
    localSocketNames: supportedNameKinds(),
    // What the OS offers (docs/unix-sockets.md, Platforms); they need the native addon too.
    unixSocketTypes: process.platform === 'win32' ? [] : process.platform === 'darwin' ? ['datagram', 'stream'] : ['datagram', 'seqpacket', 'stream'],
    uncatchableSignals: signals().filter((s) => !s.canCatch).map((s) => ({ name: s.name, reason: s.reason })),
  };
  if (values.json) return void console.log(JSON.stringify(report, null, 2));
  const native = report.native.loaded ? 'loaded' : `not loaded: ${report.native.reason}`;
  console.log(`platform       ${report.platform}, Node ${report.node}`);
  console.log(`native addon   ${native}`);
  console.log(`local sockets  filesystem names; namespaced names (${report.localSocketNames.namespaceStyle}), up to ${report.localSocketNames.maxLength} bytes`);
  console.log(`unnamed pipes  ${report.native.loaded ? 'yes' : 'needs the native addon'}`);
  console.log(`named pipes    ${process.platform !== 'win32' ? 'no (a Windows primitive)' : report.native.loaded ? 'byte and message mode' : 'need the native addon'}`);
  console.log(`FIFO files     ${process.platform === 'win32' ? 'no (Windows has none)' : 'yes'}`);
  console.log(`Unix sockets   ${report.unixSocketTypes.length === 0 ? 'none (Windows)' : report.unixSocketTypes.join(', ')}${report.native.loaded ? '' : ' (need the native addon)'}`);
  console.log('signals        catchable except:');
  for (const s of report.uncatchableSignals) console.log(`                 ${s.name.padEnd(8)} ${s.reason}`);
}

async function listenCommand(args: string[]): Promise<void> {
  const { values, positionals } = options(args, { mode: { type: 'string' } });
  if (values.help) return void console.log(HELP.listen);
  const address = oneAddress(positionals, 'listen');
  const mode = parseMode(values.mode as string | undefined);
  if (address.kind === 'fifo') {
    await createFifo(address.path, { mode: mode ?? 0o600, reuse: true });
    return shuttle(openFifoReader(address.path), null);
  }
  if (address.kind === 'datagram') return receiveDatagrams(address.name, mode);
  if (address.kind === 'seqpacket') {
    const listener = await listenUnix('seqpacket', address.name, mode === undefined ? {} : { mode });
    process.stderr.write(`listening on ${address.name} (seqpacket)\n`);
    const conn = await new Promise<UnixSocket>((resolve) => listener.once('connection', resolve));
    await listener.close();
    return shuttleMessages(seqpacketEnd(conn));
  }
  if (address.kind === 'named-pipe') {
    if (mode !== undefined) throw new UsageError('--mode is for Unix socket files and FIFOs; a named pipe has a security descriptor instead');
    if (address.message) {
      const listener = await listenNamedPipe(address.name, { mode: 'message' });
      process.stderr.write(`listening on ${listener.pipeName} (message mode)\n`);
      const pipe = await new Promise<MessagePipe>((resolve) => listener.once('connection', resolve));
      await listener.close();
      return shuttleMessages(pipeEnd(pipe));
    }
    const listener = await listenNamedPipe(address.name);
    process.stderr.write(`listening on ${listener.pipeName}\n`);
    const conn = await new Promise<import('../named-pipe/stream.js').NamedPipeStream>((resolve) => listener.once('connection', resolve));
    await listener.close();
    return shuttle(conn, conn, true);
  }
  const listener = await listen(address.name, { ...(mode === undefined ? {} : { mode }), allowHalfOpen: true });
  process.stderr.write(`listening on ${address.name}\n`);
  const [conn] = await new Promise<[import('../local-socket/stream.js').LocalSocket]>((resolve) => listener.once('connection', (c) => resolve([c])));
  await listener.close();
  await shuttle(conn, conn, isWindows); // local sockets are named pipes there
}

async function connectCommand(args: string[]): Promise<void> {
  const { values, positionals } = options(args, { wait: { type: 'boolean' }, timeout: { type: 'string' } });
  if (values.help) return void console.log(HELP.connect);
  const address = oneAddress(positionals, 'connect');
  const timeout = parseTimeout(values.timeout as string | undefined);
  const wait = Boolean(values.wait);
  if (address.kind === 'fifo') {
    const writer = await openFifoWriter(address.path, { wait, ...(timeout === undefined ? {} : { timeout }) });
    return shuttle(null, writer);
  }
  const retry = { wait, ...(timeout === undefined ? {} : { timeout }) };
  if (address.kind === 'datagram') return sendDatagrams(address.name, retry);
  if (address.kind === 'seqpacket') return shuttleMessages(seqpacketEnd(await connectUnix(address.name, { ...retry, type: 'seqpacket' })));
  if (address.kind === 'named-pipe') {
    if (address.message) return shuttleMessages(pipeEnd(await connectNamedPipe(address.name, { ...retry, mode: 'message' })));
    const conn = await connectNamedPipe(address.name, retry);
    return shuttle(conn, conn, true);
  }
  const conn = await connect(address.name, { wait, allowHalfOpen: true, ...(timeout === undefined ? {} : { timeout }) });
  await shuttle(conn, conn, isWindows);
}

async function bench(args: string[]): Promise<void> {
  const { values } = options(args, { quick: { type: 'boolean' }, only: { type: 'string' }, json: { type: 'string' }, svg: { type: 'string' } });
  if (values.help) return void console.log(HELP.bench);
  const runner = path.join(packageRoot, 'bench', 'run.js');
  if (!fs.existsSync(runner)) {
    throw new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', 'The benchmarks are not part of the published package: run this from a clone of the interprocess repository (npm install, then npx interprocess bench).');
  }
  const json = path.resolve((values.json as string | undefined) ?? path.join(packageRoot, 'bench', 'results', 'latest.json'));
  const benchArgs = [runner, `--json=${json}`, ...(values.quick ? ['--quick'] : []), ...(values.only ? [`--only=${values.only}`] : [])];
  const child = spawn(process.execPath, benchArgs, { stdio: ['ignore', 'inherit', 'pipe'] });
  let line = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    for (const char of text) {
      if (char !== '\n') {
        line += char;
        continue;
      }
      const step = /^\[(\d+)\/(\d+)\]\s*(.*)$/.exec(line);
      if (step) {
        const [done, total] = [Number(step[1]), Number(step[2])];
        const width = 30;
        const filled = Math.round((done / total) * width);
        process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${step[3]!.slice(0, 60).padEnd(60)}`);
        if (done === total) process.stderr.write('\n');
      } else if (line.trim()) {
        process.stderr.write(`\n${line}\n`);
      }
      line = '';
    }
  });
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  if (code !== 0) throw new InterprocessError('ERR_INTERPROCESS_BENCH', `The benchmark run failed (exit code ${code})`);
  if (values.svg) {
    fs.writeFileSync(values.svg as string, renderSvg(JSON.parse(fs.readFileSync(json, 'utf8'))));
    process.stderr.write(`chart: ${values.svg}\n`);
  }
}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = { info, listen: listenCommand, connect: connectCommand, bench };

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP.main);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(`interprocess: unknown command '${command}'\n\n${HELP.main}`);
    return 2;
  }
  try {
    await run(rest);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`interprocess ${command}: ${error.message}`);
      return 2;
    }
    const e = error as { code?: string; message?: string };
    // The library's hints name its options; here the same thing is a flag.
    const message = (e.message ?? String(error)).replace(/\{ wait: true \}/g, '--wait');
    console.error(`interprocess ${command}: ${e.code ? `${e.code}: ` : ''}${message}`);
    return 1;
  }
}
