#!/usr/bin/env node
// The Windows named-pipe benchmark, under Wine: interprocess's named pipes beside Node's net on
// the same kind of pipe, in one run of node.exe (bench/wine/named-pipe.mjs). Figures under Wine
// are Wine's, not Windows': each pipe operation goes through wineserver. See bench/README.md.
// Usage: npm run bench:wine -- [--quick] [--reps=N] [--json=<path>]
import fs from 'node:fs';
import path from 'node:path';
import { major, missingForWine, root, runNodeUnderWine } from '../../scripts/wine.js';
import { median } from '../lib/stats.js';
import { formatRatio, formatValue, renderTable } from '../lib/table.js';

const args = process.argv.slice(2);
const jsonPath = args.find((a) => a.startsWith('--json='))?.slice(7) ?? path.join(root, 'bench', 'results', 'wine-latest.json');
const missing = missingForWine();
if (missing.length > 0) {
  for (const [file, hint] of missing) console.error(`wine bench: missing ${file}: ${hint}`);
  process.exit(1);
}
if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) {
  console.error('wine bench: dist/index.js is missing: run `npm run build:ts` first (npm run bench:wine does).');
  process.exit(1);
}

process.stderr.write(`node.exe ${major} under Wine: named pipes (a few minutes)\n`);
const passThrough = args.filter((a) => a === '--quick' || a.startsWith('--reps='));
const { code, output } = await runNodeUnderWine([path.join('bench', 'wine', 'named-pipe.mjs'), ...passThrough], { limitMs: 1_800_000 });
const line = output.split('\n').reverse().find((l) => l.startsWith('{'));
if (code !== 0 || !line) {
  process.stderr.write(output);
  console.error(`wine bench: node.exe exited with ${code}`);
  process.exit(1);
}
const result = JSON.parse(line);

const ROWS = [
  { test: 'throughput', label: 'byte mode, 64 KiB writes', metric: 'throughput', unit: 'GB/s', better: 'higher' },
  { test: 'message-throughput', label: '64 KiB messages (node: a byte stream)', metric: 'throughput', unit: 'GB/s', better: 'higher' },
  { test: 'pingpong', label: 'ping-pong 64 B, message mode (node: bytes)', metric: 'p50', unit: 'p50 µs', better: 'lower' },
  { test: 'pingpong', label: '', metric: 'p99', unit: 'p99 µs', better: 'lower' },
];
const medianOf = (test, impl, metric) => median(result.rows.find((r) => r.test === test && r.impl === impl).runs.map((run) => run[metric]));
const table = ROWS.map((row) => {
  const ours = medianOf(row.test, 'interprocess', row.metric);
  const node = medianOf(row.test, 'node', row.metric);
  return { ...row, interprocess: ours, node, ratio: ours / node };
});
console.log(`\nnamed pipes under Wine (node.exe ${result.node}; ${result.reps} runs each, medians; Wine's figures, not Windows')\n`);
console.log(renderTable(
  [{ title: 'row', align: 'left' }, { title: 'unit', align: 'left' }, { title: 'interprocess', align: 'right' }, { title: 'node', align: 'right' }, { title: 'ipc/node', align: 'right' }],
  table.map((r) => [r.label, r.unit, formatValue(r.interprocess), formatValue(r.node), formatRatio(r.ratio)]),
));
fs.mkdirSync(path.dirname(jsonPath), { recursive: true });
fs.writeFileSync(jsonPath, `${JSON.stringify({ when: new Date().toISOString(), wine: true, ...result, table }, null, 2)}\n`);
console.log(`\nJSON: ${path.relative(process.cwd(), jsonPath)}`);
