// The interprocess command end to end: help, errors and exit codes, and listen/connect in two
// processes passing a file through intact over every kind of address, socat as a peer.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readAll, scratchDir, uniqueName } from '../helpers.js';

const cli = fileURLToPath(new URL('../../../bin/interprocess.js', import.meta.url));
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [cli, ...args], { timeout: 20_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );

test('--help for every command, and usage errors exit 2', async () => {
  for (const command of ['info', 'listen', 'connect', 'bench']) {
    const { code, stdout } = await run([command, '--help']);
    assert.equal(code, 0, command);
    assert.match(stdout, new RegExp(`^Usage: interprocess ${command}`), command);
  }
  assert.match((await run(['--help'])).stdout, /Commands:/);
  const version = (JSON.parse(fs.readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;
  for (const flag of ['--version', '-v']) assert.deepEqual(await run([flag]), { code: 0, stdout: `${version}\n`, stderr: '' }, flag);
  const none = await run([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /a command is missing/);
  const unknown = await run(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const extra = await run(['connect', 'a', 'b']);
  assert.equal(extra.code, 2);
  assert.match(extra.stderr, /exactly one ADDRESS/);
  const badOption = await run(['listen', '@x', '--nope']);
  assert.equal(badOption.code, 2);
  const badMode = await run(['listen', '@x', '--mode', 'rwx']);
  assert.equal(badMode.code, 2);
  assert.match(badMode.stderr, /octal mode/);
  for (const [address, message] of [['dgram:', /dgram: needs a path or @NAME/], ['seqpacket:@', /seqpacket: needs a path or @NAME/], ['tcp:localhost:80', /unknown address type 'tcp:'.*\.\/tcp:localhost:80/]] as const) {
    const bad = await run(['connect', address]);
    assert.equal(bad.code, 2, address);
    assert.match(bad.stderr, message, address);
    assert.match(bad.stderr, /seqpacket:PATH/, 'the address help follows');
  }
  assert.match((await run(['listen', '--help'])).stdout, /dgram:PATH/);
  for (const [args, message] of [
    [['listen', '@x', '--framing', 'raw'], /--framing is for message addresses/],
    [['connect', 'dgram:@x', '--framing', 'json'], /--framing takes line or raw; got "json"/],
    [['listen', 'dgram:@x', '--linger', '100'], /--linger is for connections; a datagram socket/],
    [['connect', 'fifo:/tmp/x', '--linger', '100'], /--linger is for connections; a FIFO/],
    [['connect', '@x', '--linger', 'soon'], /--linger takes milliseconds/],
    [['connect', '@x', '--timeout', ''], /--timeout takes milliseconds/],
    [['--version', 'x'], /takes no arguments/],
    [['info', '@x'], /info takes no ADDRESS/],
  ] as const) {
    const bad = await run([...args]);
    assert.equal(bad.code, 2, args.join(' '));
    assert.match(bad.stderr, message, args.join(' '));
  }
});

test('failures exit 1 with the error code and what to do', async () => {
  const refused = await run(['connect', `@${uniqueName()}`]);
  assert.equal(refused.code, 1);
  // Nothing has the name: an abstract socket refuses, a missing pipe is not found.
  const nothing = process.platform === 'win32' ? 'ENOENT' : 'ECONNREFUSED';
  assert.match(refused.stderr, new RegExp(`^interprocess connect: ${nothing}: .*start the server first, or connect with --wait`));
  if (process.platform === 'win32') {
    const timedOut = await run(['connect', `msgpipe:${uniqueName()}`, '--wait', '--timeout', '50']);
    assert.equal(timedOut.code, 1);
    assert.match(timedOut.stderr, /ETIMEDOUT/);
    return; // the rest is about Unix socket paths and Unix socket types
  }
  const unsupported = await run(['connect', `pipe:${uniqueName()}`]);
  assert.equal(unsupported.code, 1);
  assert.match(unsupported.stderr, /ERR_INTERPROCESS_UNSUPPORTED/);
  const tooLong = await run(['connect', `/tmp/${'x'.repeat(200)}`]);
  assert.equal(tooLong.code, 1);
  assert.match(tooLong.stderr, /ENAMETOOLONG/);
  const timedOut = await run(['connect', `@${uniqueName()}`, '--wait', '--timeout', '50']);
  assert.equal(timedOut.code, 1);
  assert.match(timedOut.stderr, /ETIMEDOUT/);
  const noReceiver = await run(['connect', `dgram:@${uniqueName()}`]);
  assert.equal(noReceiver.code, 1);
  assert.match(noReceiver.stderr, /^interprocess connect: ECONNREFUSED: .*bind the receiver first/);
  const noListener = await run(['connect', `seqpacket:${path.join(os.tmpdir(), uniqueName())}`]);
  assert.equal(noListener.code, 1);
  assert.match(noListener.stderr, /^interprocess connect: ENOENT: .*start the server first/);
});

test('info tells the platform and the native addon status', async () => {
  const { code, stdout } = await run(['info', '--json']);
  assert.equal(code, 0);
  const report = JSON.parse(stdout) as { native: { loaded: boolean }; localSocketNames: { namespaceStyle: string }; platform: string };
  assert.equal(report.native.loaded, true);
  assert.equal(report.platform, `${process.platform}-${process.arch}`);
  const text = (await run(['info'])).stdout;
  assert.match(text, /native addon {3}loaded/);
  if (process.platform === 'win32') {
    assert.equal(report.localSocketNames.namespaceStyle, 'pipe');
    assert.match(text, /named pipes {4}byte and message mode/);
    assert.match(text, /Unix sockets {3}none \(Windows\)/);
  } else {
    assert.equal(report.localSocketNames.namespaceStyle, 'abstract');
    assert.match(text, /Unix sockets {3}datagram, seqpacket, stream/);
    assert.match(text, /named pipes {4}no \(a Windows primitive\)/);
  }
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => child.on('exit', resolve));

/** The first `length` bytes a stream gives (datagrams have no end to wait for). */
function readBytes(stream: NodeJS.ReadableStream, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) resolve(Buffer.concat(chunks));
    });
    stream.once('end', () => reject(new Error(`the stream ended after ${got} of ${length} bytes`)));
  });
}

const kinds = ['filesystem', 'namespaced', 'fifo', 'seqpacket filesystem', 'seqpacket namespaced', 'named pipe', 'message-mode named pipe'] as const;
const windows = process.platform === 'win32';
function skipOf(kind: (typeof kinds)[number]): string | false {
  if (kind.startsWith('seqpacket') && (windows || process.platform === 'darwin')) return 'no seqpacket Unix sockets here';
  if (kind.endsWith('named pipe') && !windows) return 'named pipes are a Windows primitive';
  if (kind === 'fifo' && windows) return 'Windows has no FIFO files';
  return false;
}
for (const kind of kinds) {
  const skip = skipOf(kind);
  test(`listen and connect pass a file through intact (${kind})`, { timeout: 60_000, skip }, async (t) => {
    const dir = scratchDir(t);
    const address = {
      filesystem: windows ? `\\\\.\\pipe\\${uniqueName()}` : path.join(dir, 'cli.sock'),
      namespaced: `@${uniqueName()}`,
      'named pipe': `pipe:${uniqueName()}`,
      'message-mode named pipe': `msgpipe:${uniqueName()}`,
      fifo: `fifo:${path.join(dir, 'cli.fifo')}`,
      'seqpacket filesystem': `seqpacket:${path.join(dir, 'cli.sock')}`,
      'seqpacket namespaced': `seqpacket:@${uniqueName()}`,
    }[kind];
    const file = path.join(dir, 'payload');
    const payload = randomBytes(kind.startsWith('seqpacket') || kind.startsWith('message') ? 1024 * 1024 : 5 * 1024 * 1024);
    fs.writeFileSync(file, payload);
    // Bytes through messages: one message per read, no separator (the default is one per line).
    const framing = kind.startsWith('seqpacket') || kind.startsWith('message') ? ['--framing', 'raw'] : [];
    const listener = spawn(process.execPath, [cli, 'listen', address, ...framing], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => listener.kill());
    const received = readAll(listener.stdout);
    let errors = '';
    listener.stderr.on('data', (text) => (errors += `listener: ${text}`));
    const input = fs.openSync(file, 'r');
    const connector = spawn(process.execPath, [cli, 'connect', address, '--wait', '--timeout', '20000', ...framing], { stdio: [input, 'ignore', 'pipe'] });
    connector.stderr!.on('data', (text) => (errors += `connector: ${text}`));
    fs.closeSync(input); // the child has its copy (and Windows cannot remove an open file)
    const [connectorCode, listenerCode] = await Promise.all([
      new Promise((resolve) => connector.on('exit', (code) => {
        if (code !== 0) listener.kill(); // don't wait forever for a peer that gave up
        resolve(code);
      })),
      new Promise((resolve) => listener.on('exit', resolve)),
    ]);
    assert.equal(connectorCode, 0, errors);
    assert.equal(listenerCode, 0, errors);
    const got = await received;
    assert.equal(got.length, payload.length, errors);
    assert.equal(sha(got), sha(payload));
  });
}

// Datagrams on a local Unix socket are reliable and ordered (Linux, and the BSDs): a file cut into
// datagrams arrives intact when the receiver writes them in order.
for (const kind of ['filesystem', 'namespaced'] as const) {
  const skip = process.platform === 'win32' ? 'no Unix datagram sockets on Windows' : false;
  test(`listen and connect pass a file through intact as datagrams (${kind})`, { timeout: 60_000, skip }, async (t) => {
    const dir = scratchDir(t);
    const socketPath = path.join(dir, 'dgram.sock');
    const address = kind === 'filesystem' ? `dgram:${socketPath}` : `dgram:@${uniqueName()}`;
    const file = path.join(dir, 'payload');
    const payload = randomBytes(300 * 1024);
    fs.writeFileSync(file, payload);
    const listener = spawn(process.execPath, [cli, 'listen', address, '--framing', 'raw'], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => listener.kill());
    const received = readBytes(listener.stdout, payload.length);
    const input = fs.openSync(file, 'r');
    const connector = spawn(process.execPath, [cli, 'connect', address, '--wait', '--timeout', '20000', '--framing', 'raw'], { stdio: [input, 'ignore', 'inherit'] });
    fs.closeSync(input); // the child has its copy (and Windows cannot remove an open file)
    assert.equal(await exited(connector), 0);
    const got = await received;
    assert.equal(got.length, payload.length);
    assert.equal(sha(got), sha(payload));
    listener.kill('SIGTERM'); // the receiver runs until told to stop, as socat's does
    assert.equal(await exited(listener), 0);
    if (kind === 'filesystem') assert.equal(fs.existsSync(socketPath), false, 'the socket file is removed on SIGTERM');
  });
}

const hasSocat = (() => {
  try {
    execFileSync('socat', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test('socat as the peer for datagrams, both ways', { timeout: 60_000, skip: process.platform === 'win32' ? 'no Unix datagram sockets on Windows' : hasSocat ? false : 'socat is not installed' }, async (t) => {
  const dir = scratchDir(t);
  const file = path.join(dir, 'payload');
  const payload = randomBytes(200 * 1024);
  fs.writeFileSync(file, payload);

  // socat sends, we receive.
  const ours = path.join(dir, 'ours.sock');
  const listener = spawn(process.execPath, [cli, 'listen', `dgram:${ours}`, '--framing', 'raw'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => listener.kill());
  const received = readBytes(listener.stdout, payload.length);
  await new Promise((resolve) => listener.stderr.once('data', resolve)); // "receiving datagrams on ..."
  const sender = spawn('socat', ['-u', '-', `UNIX-SENDTO:${ours}`], { stdio: [fs.openSync(file, 'r'), 'ignore', 'inherit'] });
  assert.equal(await exited(sender), 0);
  assert.equal(sha(await received), sha(payload));
  listener.kill('SIGTERM');
  assert.equal(await exited(listener), 0);

  // We send, socat receives: our datagrams fit its 8 KiB reads.
  const theirs = path.join(dir, 'theirs.sock');
  const receiver = spawn('socat', ['-u', `UNIX-RECV:${theirs}`, '-'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => receiver.kill());
  const got = readBytes(receiver.stdout, payload.length);
  const connector = spawn(process.execPath, [cli, 'connect', `dgram:${theirs}`, '--wait', '--timeout', '20000', '--framing', 'raw'], { stdio: [fs.openSync(file, 'r'), 'ignore', 'inherit'] });
  assert.equal(await exited(connector), 0);
  assert.equal(sha(await got), sha(payload));
});

test('socat as the peer for seqpacket, both ways', { timeout: 60_000, skip: process.platform !== 'linux' ? 'tested on Linux' : hasSocat ? false : 'socat is not installed' }, async (t) => {
  const dir = scratchDir(t);
  const file = path.join(dir, 'payload');
  const payload = randomBytes(200 * 1024);
  fs.writeFileSync(file, payload);

  // socat connects to our listener.
  const ours = path.join(dir, 'ours.sock');
  const listener = spawn(process.execPath, [cli, 'listen', `seqpacket:${ours}`, '--framing', 'raw'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => listener.kill());
  const [received, listenerExit] = [readAll(listener.stdout), exited(listener)];
  await new Promise((resolve) => listener.stderr.once('data', resolve)); // "listening on ..."
  const client = spawn('socat', ['-u', '-', `UNIX-CONNECT:${ours},socktype=5`], { stdio: [fs.openSync(file, 'r'), 'ignore', 'inherit'] });
  assert.equal(await exited(client), 0);
  assert.equal(await listenerExit, 0);
  assert.equal(sha(await received), sha(payload));

  // We connect to socat's listener (socktype 5: SOCK_SEQPACKET).
  const theirs = path.join(dir, 'theirs.sock');
  const server = spawn('socat', ['-u', `UNIX-LISTEN:${theirs},socktype=5`, '-'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => server.kill());
  const [got, serverExit] = [readAll(server.stdout), exited(server)];
  const connector = spawn(process.execPath, [cli, 'connect', `seqpacket:${theirs}`, '--wait', '--timeout', '20000', '--framing', 'raw'], { stdio: [fs.openSync(file, 'r'), 'ignore', 'inherit'] });
  assert.equal(await exited(connector), 0);
  assert.equal(await serverExit, 0);
  assert.equal(sha(await got), sha(payload));
});

test('the benchmark chart: one bar per metric, interprocess relative to Node core', async () => {
  const { renderSvg } = await import('#internal/cli/svg.js');
  const svg = renderSvg({
    rows: [
      { id: 'local-socket/throughput', metrics: { throughput: { better: 'higher', ratios: { interprocessToNode: 1.02 } } } },
      { id: 'local-socket/latency', metrics: { p50: { better: 'lower', ratios: { interprocessToNode: 2 } }, p99: { better: 'lower', ratios: { interprocessToNode: null } } } },
    ],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal((svg.match(/<rect /g) ?? []).length, 2, 'a bar per metric with a ratio');
  assert.match(svg, /local-socket\/throughput throughput<\/text>/);
  assert.match(svg, />1\.02x</);
  assert.match(svg, />0\.50x</, 'latency twice as high is half as good');
});
