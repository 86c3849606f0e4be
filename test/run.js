#!/usr/bin/env node
// Runs every compiled test file (out/test/**/*.test.js) with node:test. Files are listed here,
// not globbed by node, because Node 20 and Node 22+ read `--test` arguments differently.
// Usage: node test/run.js [substring ...]   (only files whose path contains a substring)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const compiled = path.join(root, 'out', 'test');
if (!existsSync(compiled)) {
  console.error('No compiled tests in out/test: run `npm test` (it compiles them first).');
  process.exit(1);
}

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? walk(full) : [full];
  });
}

const filters = process.argv.slice(2);
const files = walk(compiled)
  .filter((file) => file.endsWith('.test.js'))
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort();
if (files.length === 0) {
  console.error(`No test files match ${filters.join(', ')}`);
  process.exit(1);
}
// The timeout bounds each file as a whole (node:test gives its file-level test the same timeout)
// as well as each test without one of its own. It is sized at 3x a quiet run of the slowest file,
// so that CI passes on a loaded machine: the package tests took about 230 s in a CI run beside
// other work, since every primitive's smoke test runs on each target (arm64 under qemu, win32
// under Wine), and one run beside a second CI passed 360 s (900 s); every other file under 40 s
// (120 s). INTERPROCESS_TEST_TIMEOUT (ms) overrides it, for
// slower runs (scripts/sanitize.sh).
const packageTests = process.env.INTERPROCESS_PACKAGE_TESTS !== '0' && files.some((file) => file.includes(`${path.sep}package${path.sep}`));
const timeout = Number(process.env.INTERPROCESS_TEST_TIMEOUT) || (packageTests ? 900_000 : 120_000);
console.log(`node ${process.version}: ${files.length} test files (timeout ${timeout / 1000} s per file)`);
const result = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-concurrency=2', `--test-timeout=${timeout}`, ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(result.status ?? 1);
