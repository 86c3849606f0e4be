#!/usr/bin/env node
// The installed package under Bun and Deno. Packs the package (`npm pack`, with the prebuilds of
// `npm run prebuild`), installs the tarball into a scratch project with npm's defaults, and runs
// test/runtimes/smoke.mjs there with Node (the reference), Bun and Deno, each from the npm registry
// (scripts/install-test-tools.sh unpacks them). Each primitive must do what the table below says
// (the README's support table says the same): `ok`, or `unsupported` (a typed
// ERR_INTERPROCESS_UNSUPPORTED that says why). Exits non-zero on any difference, a crash or a hang.
// .ci/run runs it after the Node suites. Usage: node test/runtimes/run.mjs [node|bun|deno ...]
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tools = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'interprocess-ci', 'tools');
const runtimes = {
  node: { command: [process.execPath] },
  bun: { command: [path.join(tools, 'oven+bun-linux-x64@1.4.5', 'package', 'bin', 'bun')] },
  deno: { command: [path.join(tools, 'deno+linux-x64-glibc@2.9.6', 'package', 'deno'), 'run', '--allow-all'] },
};
const primitives = [
  'local socket with the peer pid',
  'pipe: 4 MiB through pipe(), checksummed; a child (sh) writes through spawnWith',
  'FIFO: no reader is a typed ENXIO; then a reader and a writer',
  'datagram: bindDatagram, send, receive',
  'channel: an RPC request over a local socket',
  'signals: onSignal and sendSignal to this process',
];
/** What each runtime does with each primitive; anything not listed must be `ok`. */
const expected = {
  // Bun 1.4 has no uv_poll, which UnixSocket's readiness watcher needs (oven-sh/bun#18546).
  bun: { 'datagram: bindDatagram, send, receive': 'unsupported' },
};
// Generous: a quiet run takes a few seconds per runtime; the machine may be loaded (3x and more).
const TIMEOUT = 180_000;

const chosen = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(runtimes);
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`runtime smoke: only on linux-x64 (the Bun and Deno binaries fetched here); this is ${process.platform}-${process.arch}`);
  process.exit(0);
}
const missing = chosen.filter((name) => !runtimes[name] || !fs.existsSync(runtimes[name].command[0]));
if (missing.length) {
  console.error(`runtime smoke: missing ${missing.map((name) => runtimes[name]?.command[0] ?? name).join(', ')} (run \`bash scripts/install-test-tools.sh\`)`);
  process.exit(1);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ipc-runtimes-'));
let failures = 0;
try {
  const json = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const tarball = path.join(work, JSON.parse(json)[0].filename);
  const project = path.join(work, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'interprocess-runtimes', private: true, type: 'module' }));
  fs.copyFileSync(path.join(root, 'test', 'runtimes', 'smoke.mjs'), path.join(project, 'smoke.mjs'));
  execFileSync('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project, stdio: ['ignore', 'ignore', 'inherit'] });

  for (const name of chosen) {
    const [command, ...lead] = runtimes[name].command;
    console.log(`\n--- ${name}: ${[command, ...lead].join(' ')} smoke.mjs`);
    const { code, output } = await run(command, [...lead, 'smoke.mjs'], project);
    process.stdout.write(output);
    const results = new Map();
    for (const line of output.split('\n')) {
      const match = /^(ok|unsupported|FAIL) - (.*)$/.exec(line);
      const primitive = match && primitives.find((p) => match[2] === p || match[2].startsWith(`${p}: `));
      if (primitive) results.set(primitive, match[1]);
    }
    for (const primitive of primitives) {
      const want = expected[name]?.[primitive] ?? 'ok';
      const got = results.get(primitive) ?? `no result (exit ${code})`;
      if (got !== want) {
        failures++;
        console.log(`MISMATCH - ${name}: ${primitive}: expected ${want}, got ${got}`);
      }
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(failures ? `\nruntime smoke: ${failures} mismatches` : '\nruntime smoke: every runtime as expected');
process.exit(failures ? 1 : 0);

/** Runs a command with its output collected; kills it after TIMEOUT (a hang fails, it does not stall CI). */
function run(command, args, cwd) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      output += `\n(killed after ${TIMEOUT / 1000} s: a hang)\n`;
      child.kill('SIGKILL');
    }, TIMEOUT);
    child.on('error', (error) => (output += `\n${error.message}\n`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: signal ?? code, output });
    });
  });
}
