#!/usr/bin/env node
// Runs the compiled test files that hold on Windows (out/test/**) with the win32-x64 node.exe under
// Wine, loading the win32-x64 prebuild (prebuilds/win32-x64, from `npm run prebuild`).
// Usage: node test/wine/run.js [substring ...]   (only files whose path contains a substring)
// Environment: INTERPROCESS_WINE_NODE=20|22 picks the node.exe (default 22; Debian's Wine runs
// those two only). Uses the tools of scripts/install-test-tools.sh, at the same cache locations.
import fs from 'node:fs';
import path from 'node:path';
import { major, missingForWine, root, runNodeUnderWine } from '../../scripts/wine.js';

// The test files that run on Windows. A file joins this list once it passes there; tests inside
// it that cannot hold on Windows skip themselves with the reason (they still run on Linux).
const windowsFiles = ['channel/broadcast.test.js', 'channel/channel.test.js', 'channel/rpc.test.js', 'cli/cli.test.js', 'cli/examples.test.js', 'cli/framing.test.js', 'fifo/fifo.test.js', 'listener/listener.test.js', 'local-socket/communication.test.js', 'local-socket/http.test.js', 'local-socket/lifecycle.test.js', 'local-socket/name.test.js', 'local-socket/resources.test.js', 'local-socket/security.test.js', 'local-socket/socat.test.js', 'local-socket/takeover.test.js', 'named-pipe/handles.test.js', 'named-pipe/named-pipe.test.js', 'pipe/pipe.test.js', 'service/windows.test.js', 'shared-memory/shm.test.js', 'signal/signal.test.js', 'single-instance/single-instance.test.js', 'sync/sync.test.js'];

const missing = [
  ...missingForWine(),
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

console.log(`wine, node.exe ${major}: ${files.length} test files`);
const limitMs = Number(process.env.INTERPROCESS_WINE_TIMEOUT_MS || 900_000);
const { code, signal, output } = await runNodeUnderWine(
  ['--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=360000', ...files],
  { limitMs },
);
process.stdout.write(output);
if (signal) {
  console.error(`wine tests: node.exe was killed (${signal}) after ${limitMs} ms or by a signal`);
  process.exit(1);
}
process.exit(code ?? 1);
