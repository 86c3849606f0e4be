// The interprocess command end to end: help, errors and exit codes, and listen/connect in two
// processes passing a file through intact.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
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
  const none = await run([]);
  assert.equal(none.code, 2);
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
});

test('failures exit 1 with the error code and what to do', async () => {
  const refused = await run(['connect', `@${uniqueName()}`]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^interprocess connect: ECONNREFUSED: .*start the server first/);
  const tooLong = await run(['connect', `/tmp/${'x'.repeat(200)}`]);
  assert.equal(tooLong.code, 1);
  assert.match(tooLong.stderr, /ENAMETOOLONG/);
  const timedOut = await run(['connect', `@${uniqueName()}`, '--wait', '--timeout', '50']);
  assert.equal(timedOut.code, 1);
  assert.match(timedOut.stderr, /ETIMEDOUT/);
});

test('info tells the platform and the native addon status', async () => {
  const { code, stdout } = await run(['info', '--json']);
  assert.equal(code, 0);
  const report = JSON.parse(stdout) as { native: { loaded: boolean }; localSocketNames: { namespaceStyle: string }; platform: string };
  assert.equal(report.native.loaded, true);
  assert.equal(report.platform, `${process.platform}-${process.arch}`);
  assert.equal(report.localSocketNames.namespaceStyle, 'abstract');
  assert.match((await run(['info'])).stdout, /native addon {3}loaded/);
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const kind of ['filesystem', 'namespaced', 'fifo'] as const) {
  test(`listen and connect pass a file through intact (${kind})`, { timeout: 60_000 }, async (t) => {
    const dir = scratchDir(t);
    const address = kind === 'filesystem' ? path.join(dir, 'cli.sock') : kind === 'namespaced' ? `@${uniqueName()}` : `fifo:${path.join(dir, 'cli.fifo')}`;
    const file = path.join(dir, 'payload');
    const payload = randomBytes(5 * 1024 * 1024);
    fs.writeFileSync(file, payload);
    const listener = spawn(process.execPath, [cli, 'listen', address], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => listener.kill());
    const received = readAll(listener.stdout);
    const connector = spawn(process.execPath, [cli, 'connect', address, '--wait', '--timeout', '20000'], { stdio: [fs.openSync(file, 'r'), 'ignore', 'inherit'] });
    const [connectorCode, listenerCode] = await Promise.all([
      new Promise((resolve) => connector.on('exit', (code) => {
        if (code !== 0) listener.kill(); // don't wait forever for a peer that gave up
        resolve(code);
      })),
      new Promise((resolve) => listener.on('exit', resolve)),
    ]);
    assert.equal(connectorCode, 0);
    assert.equal(listenerCode, 0);
    const got = await received;
    assert.equal(got.length, payload.length);
    assert.equal(sha(got), sha(payload));
  });
}

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
