/** What each command does, once its command line is parsed (args.ts). */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { InterprocessError } from '../errors.js';
import type { Command } from './args.js';
import { acceptOne, bindReceiver, bindSender, connectTo, fifoReader, fifoWriter, nativeStatus, signals, supportedNameKinds } from './library.js';
import { readToStdout, sendMessages, shuttleBytes, shuttleMessages, writeFromStdin, writeMessage } from './shuttle.js';
import { renderSvg } from './svg.js';

type Of<C extends Command['command']> = Extract<Command, { command: C }>;

export function info({ json }: Of<'info'>): void {
  const report = {
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    native: nativeStatus(),
    localSocketNames: supportedNameKinds(),
    // What the OS offers (docs/unix-sockets.md, Platforms); they need the native addon too.
    unixSocketTypes: process.platform === 'win32' ? [] : process.platform === 'darwin' ? ['datagram', 'stream'] : ['datagram', 'seqpacket', 'stream'],
    uncatchableSignals: signals().filter((s) => !s.canCatch).map((s) => ({ name: s.name, reason: s.reason })),
  };
  if (json) return void console.log(JSON.stringify(report, null, 2));
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

/** Bound there, prints each datagram received until SIGINT/SIGTERM (datagrams have no end). */
async function receiveDatagrams({ address, mode, framing }: Of<'listen'>): Promise<void> {
  if (address.kind !== 'datagram') return;
  const socket = await bindReceiver(address.name, mode);
  process.stderr.write(`receiving datagrams on ${address.name}\n`);
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
    await writeMessage(message, framing);
  }
}

export async function listen(command: Of<'listen'>): Promise<void> {
  const { address, mode, linger, framing } = command;
  if (address.kind === 'fifo') return readToStdout(await fifoReader(address.path, mode));
  if (address.kind === 'datagram') return receiveDatagrams(command);
  const conn = await acceptOne(address, mode);
  if (conn.kind === 'bytes') return shuttleBytes(conn, linger);
  return shuttleMessages(conn, framing, linger);
}

export async function connect({ address, wait, timeout, linger, framing }: Of<'connect'>): Promise<void> {
  const options = { wait, ...(timeout === undefined ? {} : { timeout }) };
  if (address.kind === 'fifo') return writeFromStdin(await fifoWriter(address.path, options));
  // Unbound: there are no replies to receive.
  if (address.kind === 'datagram') return sendMessages(await bindSender(address.name, options), framing);
  const conn = await connectTo(address, options);
  if (conn.kind === 'bytes') return shuttleBytes(conn, linger);
  return shuttleMessages(conn, framing, linger);
}

export async function bench({ quick, only, json: jsonFile, svg }: Of<'bench'>, packageRoot: string): Promise<void> {
  const runner = path.join(packageRoot, 'bench', 'run.js');
  if (!fs.existsSync(runner)) {
    throw new InterprocessError('ERR_INTERPROCESS_UNSUPPORTED', 'The benchmarks are not part of the published package: run this from a clone of the interprocess repository (npm install, then npx interprocess bench).');
  }
  const json = path.resolve(jsonFile ?? path.join(packageRoot, 'bench', 'results', 'latest.json'));
  const benchArgs = [runner, `--json=${json}`, ...(quick ? ['--quick'] : []), ...(only ? [`--only=${only}`] : [])];
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
  if (svg) {
    fs.writeFileSync(svg, renderSvg(JSON.parse(fs.readFileSync(json, 'utf8'))));
    process.stderr.write(`chart: ${svg}\n`);
  }
}
