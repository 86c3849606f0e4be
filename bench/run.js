#!/usr/bin/env node
// Benchmark harness: measures each primitive of interprocess side by side with Node core's
// counterpart and a C baseline (compiled here), in the same run, and prints their ratios.
// Every measurement runs its two sides in two fresh processes. See bench/README.md.
// Usage: npm run bench -- [--quick] [--only=<substring>] [--json=<path>] [--reps=<n>] [--pipe-size=<bytes>]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { USAGE, parseFlags } from './lib/args.js';
import { buildC } from './lib/c-build.js';
import { killAllChildren, runPair, runParent } from './lib/children.js';
import { machineInfo } from './lib/machine.js';
import { median } from './lib/stats.js';
import { formatRatio, formatValue, renderTable } from './lib/table.js';

// Add a suite here (bench/suites/<name>.js; see bench/README.md).
const SUITE_NAMES = ['local-socket', 'unix-socket', 'pipe', 'fifo', 'channel', 'shm', 'sync'];

// The columns of a suite that does not name its own (see bench/README.md: implementations).
const IMPLEMENTATIONS = [
  { key: 'interprocess', title: 'interprocess' },
  { key: 'node', title: 'node' },
  { key: 'c', title: 'C' },
];

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(benchDir, '..');

let flags;
try {
  flags = parseFlags(process.argv.slice(2));
} catch (error) {
  console.error(`${error.message}\n${USAGE}`);
  process.exit(2);
}
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!existsSync(path.join(root, 'dist', 'index.js'))) {
  console.error('dist/index.js is missing: build first (npm run build, or npm run bench, which compiles the TypeScript).');
  process.exit(1);
}

// Loaded once dist/ is known to exist: a suite may read interprocess's defaults from it.
const SUITES = await Promise.all(SUITE_NAMES.map(async (name) => (await import(`./suites/${name}.js`)).default));
const implementationsOf = (suite) => suite.implementations ?? IMPLEMENTATIONS;
const counterpartsOf = (suite) => suite.counterparts ?? ['node'];
const counterpartTitle = (suite) => suite.counterpartTitle ?? 'node';
// interprocess's side of the ratios: its column, or the better of a suite's own columns (the
// channel suite: each codec; every library is compared at its best).
const ownOf = (suite) => suite.own ?? ['interprocess'];

const allRows = SUITES.flatMap((suite) => suite.rows.map((row) => ({ ...row, suite })));
const rows = allRows.filter((row) => flags.only === null || flags.only.split(',').some((part) => row.id.includes(part)));
if (rows.length === 0) {
  console.error(`No row id contains "${flags.only}". Rows: ${allRows.map((row) => row.id).join(', ')}`);
  process.exit(2);
}

// Socket files and FIFOs live in a private temp dir, removed (with any child still running) however we exit.
const tempDir = mkdtempSync(path.join(os.tmpdir(), 'interprocess-bench-'));
process.on('exit', () => {
  killAllChildren();
  rmSync(tempDir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: stopping, children killed\n`);
    process.exit(130);
  });
}

/** Can we pin processes to CPU 0? Returns null if so, else why not. */
function pinningUnavailable() {
  const result = spawnSync('taskset', ['-c', '0', 'true'], { encoding: 'utf8' });
  if (result.error) return result.error.code === 'ENOENT' ? 'taskset not found (install util-linux)' : `taskset: ${result.error.message}`;
  if (result.status !== 0) return `taskset -c 0 failed: ${result.stderr.trim()}`;
  return null;
}

const progress = (text) => process.stderr.write(`${text}\n`);
const startedAt = new Date();
const machine = machineInfo(root);
const cBuild = buildC(path.join(benchDir, 'c'), path.join(benchDir, '.c-build'));
const noPinning = rows.some((row) => row.pin) ? pinningUnavailable() : null;
// Implementations that cannot run here (a peer that did not build, say): key -> why, per suite.
const unavailable = new Map(SUITES.filter((suite) => rows.some((row) => row.suite === suite)).map((suite) => [suite, suite.unavailable?.() ?? {}]));
/** Why `key` has no measurement in `row`, or null if it runs. */
const skipReason = (row, key) => (key === 'c' && !cBuild.ok ? cBuild.reason : (row.unsupported?.[key] ?? unavailable.get(row.suite)?.[key] ?? null));

progress(`interprocess bench (${flags.quick ? 'quick' : 'full'}): node ${machine.node}, ${machine.kernel}, ${machine.cpus} CPUs (${machine.cpuModel}), median of ${flags.reps} run(s)`);
// Other work on the machine skews every column; say so rather than let it pass unnoticed.
if (machine.loadAverage[0] > 0.5) progress(`Note: load average ${machine.loadAverage[0].toFixed(2)} (other processes, or a run just before this one): expect noise.`);
progress(cBuild.ok ? `C baseline: ${cBuild.compiler}, ${cBuild.flags}` : `C baseline unavailable: ${cBuild.reason}${cBuild.detail ? `\n${cBuild.detail}` : ''}`);
if (noPinning) progress(`Skipping pinned rows: ${noPinning}`);

const timeoutMs = flags.quick ? 60_000 : 180_000;
let measurement = 0;
let failures = 0;
// At least this many (rows whose runs spread widely take more: see SPREAD_LIMIT).
const totalMeasurements = rows.filter((row) => !(row.pin && noPinning)).reduce((n, row) => n + implementationsOf(row.suite).length, 0) * flags.reps;

/** Runs one measurement; returns { metricKey: value }. */
async function measure(row, impl) {
  measurement += 1;
  const tempPath = path.join(tempDir, String(measurement)); // nothing there yet: a row adds a suffix
  const plan = row.plan(impl, { tempPath, quick: flags.quick, pipeSize: flags.pipeSize, cBinary: (name) => cBuild.binaries[name] });
  // A pinned parent's peer inherits its CPU affinity.
  const pinned = (argv) => (row.pin ? ['taskset', '-c', '0', ...argv] : argv);
  const result = plan.parent
    ? await runParent({ parent: pinned(plan.parent), timeoutMs })
    : await runPair({ server: pinned(plan.server), client: pinned(plan.client), reporter: plan.reporter, timeoutMs });
  return Object.fromEntries(row.metrics.map((metric) => [metric.key, metric.from(result)]));
}

// A row whose runs spread wider than this (max - min over the median, for any column in its
// ratios) gets more runs, up to --max-reps: on a shared machine one slow run is common.
const SPREAD_LIMIT = 0.25;

/** The keys whose spread decides whether a row needs more runs: ours, the counterparts, and C if a target names it. */
function decidingKeys(row) {
  const keys = new Set([...ownOf(row.suite), ...counterpartsOf(row.suite)]);
  for (const metric of row.metrics) for (const t of metric.targets ?? []) if (t.against !== 'counterpart') keys.add(t.against);
  return [...keys];
}

function spreadOf(series) {
  if (series.length < 2) return null;
  const mid = median(series);
  return mid ? (Math.max(...series) - Math.min(...series)) / mid : null;
}

async function runRow(row) {
  const record = { id: row.id, suite: row.suite.name, label: row.label, pinned: row.pin, params: row.params(flags.quick, { pipeSize: flags.pipeSize }), skipped: null, errors: {}, metrics: {} };
  const implementations = implementationsOf(row.suite);
  // runs[key][rep]: that repetition's values, or null where it failed or was skipped. The
  // repetitions interleave the implementations (each runs once per repetition, in a rotating
  // order), so runs of one repetition ran side by side in time: ratios are taken per repetition,
  // and drift in the machine's load hits both sides of each.
  const runs = Object.fromEntries(implementations.map(({ key }) => [key, []]));
  if (row.pin && noPinning) {
    record.skipped = noPinning;
    return record;
  }
  const wide = () =>
    row.metrics.some((metric) =>
      decidingKeys(row).some((key) => (spreadOf((runs[key] ?? []).filter(Boolean).map((run) => run[metric.key])) ?? 0) > SPREAD_LIMIT),
    );
  let rep = 0;
  for (; rep < flags.maxReps; rep++) {
    if (rep >= flags.reps && !wide()) break;
    if (rep === flags.reps) progress(`${row.id}: the runs spread more than ${SPREAD_LIMIT * 100}%: more runs (up to ${flags.maxReps})`);
    // Rotate the order each repetition, so drift in the machine's state hits every column alike.
    const order = implementations.map((_, i) => implementations[(i + rep) % implementations.length]);
    for (const { key } of order) {
      const tag = `[${measurement + 1}/${totalMeasurements}] ${row.id} ${key} run ${rep + 1}/${flags.reps}`;
      runs[key][rep] = null;
      const skip = skipReason(row, key);
      if (skip !== null) {
        record.errors[key] = [skip];
        progress(`${tag}: skipped (${skip})`);
        measurement += 1;
        continue;
      }
      const started = Date.now();
      try {
        const values = await measure(row, key);
        runs[key][rep] = values;
        const shown = row.metrics.map((metric) => `${formatValue(values[metric.key])} ${metric.unit}`).join(', ');
        progress(`${tag}: ${shown} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      } catch (error) {
        // A peer's failure (an npm package that crashes, say) is a result, shown in its column;
        // interprocess's, node's or C's fails the run.
        const peer = (row.suite.counterparts?.includes(key) || row.suite.peers?.includes(key)) && key !== 'node';
        if (!peer) failures += 1;
        (record.errors[key] ??= []).push(error.message);
        progress(`${tag}: FAILED${peer ? ' (a peer: shown in its column)' : ''} ${error.message}`);
      }
    }
  }
  record.repetitions = rep;
  for (const metric of row.metrics) {
    const values = {};
    for (const { key } of implementations) {
      const series = runs[key].filter(Boolean).map((run) => run[metric.key]);
      const mid = series.length > 0 ? median(series) : null;
      // Spread of the runs relative to their median: a ratio is only as good as this.
      values[key] = { median: mid, spread: spreadOf(series), runs: runs[key].map((run) => (run ? run[metric.key] : null)) };
    }
    const ratio = (a, b) => (values[a]?.median != null && values[b]?.median ? values[a].median / values[b].median : null);
    /** The ratio a/b of each repetition in which both ran: its lowest and highest (the interval shown). */
    const interval = (a, b) => {
      if (a == null || b == null) return null;
      const pairs = [];
      for (let i = 0; i < rep; i++) {
        const x = runs[a]?.[i]?.[metric.key];
        const y = runs[b]?.[i]?.[metric.key];
        if (x != null && y) pairs.push(x / y);
      }
      return pairs.length >= 2 ? { low: Math.min(...pairs), high: Math.max(...pairs), n: pairs.length } : null;
    };
    const bestOf = (keys) =>
      keys.filter((key) => values[key]?.median != null).sort((x, y) => (metric.better === 'higher' ? values[y].median - values[x].median : values[x].median - values[y].median))[0] ?? null;
    // The counterpart: node, or the best of a suite's peers; ours: interprocess, or the best of its columns.
    const best = bestOf(counterpartsOf(row.suite));
    const ours = bestOf(ownOf(row.suite)) ?? 'interprocess';
    const ratios = {
      interprocess: ours,
      interprocessToNode: ratio(ours, 'node'),
      interprocessToC: ratio(ours, 'c'),
      nodeToC: ratio('node', 'c'),
      counterpart: best,
      interprocessToCounterpart: best === null ? null : ratio(ours, best),
      counterpartToC: best === null ? null : ratio(best, 'c'),
    };
    const intervals = {
      interprocessToNode: interval(ours, 'node'),
      interprocessToC: interval(ours, 'c'),
      interprocessToCounterpart: interval(ours, best),
    };
    const { target, status } = metric.targets
      ? targetsOf(metric, ratios, row.suite, ratio, (against) => interval(ours, against === 'c' ? 'c' : against === 'counterpart' ? best : against))
      : { target: targetOf(metric), status: statusOf(metric, ratios.interprocessToNode, intervals.interprocessToNode) };
    record.metrics[metric.key] = { unit: metric.unit, better: metric.better, target, values, ratios, intervals, status };
  }
  return record;
}

/** The target on interprocess/node, as text (e.g. ">=0.90"), or null for none. */
function targetOf(metric) {
  if (metric.within === null) return null;
  return metric.better === 'higher' ? `>=${(1 - metric.within).toFixed(2)}` : `<=${(1 + metric.within).toFixed(2)}`;
}

/**
 * Whether a ratio meets `bound` (at least it for higher-is-better, at most for lower): 'ok' when
 * the median ratio does and so does every repetition's (its interval), 'MISS' when none does,
 * 'unsure' when the interval straddles the bound (the runs disagree: noise decides), 'unknown'
 * without a ratio. With fewer than two paired repetitions the median alone decides.
 */
function judge(better, actual, range, bound) {
  if (actual === null) return 'unknown';
  const meets = (x) => (better === 'higher' ? x >= bound : x <= bound);
  if (range === null) return meets(actual) ? 'ok' : 'MISS';
  const low = meets(range.low);
  const high = meets(range.high);
  if (low && high) return 'ok';
  if (!low && !high) return 'MISS';
  return 'unsure';
}

/**
 * A metric's `targets` ([{ against: 'counterpart' | 'c' | <implementation key>, ratio }]):
 * interprocess at least `ratio` times the other (higher is better) or at most `ratio` times it
 * (lower is better), judged on the interval of the per-repetition ratios (see judge).
 */
function targetsOf(metric, ratios, suite, ratioOf, intervalOf) {
  const sign = metric.better === 'higher' ? '>=' : '<=';
  const titleOf = (against) => (against === 'c' ? 'C' : against === 'counterpart' ? counterpartTitle(suite) : (implementationsOf(suite).find((i) => i.key === against)?.title ?? against));
  const parts = metric.targets.map(({ against, ratio }) => {
    const actual = against === 'c' ? ratios.interprocessToC : against === 'counterpart' ? ratios.interprocessToCounterpart : ratioOf(ratios.interprocess, against);
    const range = intervalOf(against);
    const verdict = judge(metric.better, actual, range, ratio);
    // The ratio against a named implementation has no column of its own: it is shown here.
    const shown = against !== 'c' && against !== 'counterpart' && actual !== null ? ` (${actual.toFixed(2)}x${range ? ` ${formatInterval(range)}` : ''})` : '';
    return { text: `${sign}${ratio.toFixed(2)}x ${titleOf(against)}${shown}`, verdict };
  });
  const verdicts = parts.map((p) => p.verdict);
  const status = verdicts.includes('MISS') ? 'MISS' : verdicts.includes('unsure') ? 'unsure' : verdicts.includes('unknown') ? 'unknown' : 'ok';
  return { target: parts.map((p) => (parts.length > 1 && p.verdict !== status ? `${p.text} ${p.verdict}` : p.text)).join(', '), status };
}

function statusOf(metric, ratio, range) {
  if (metric.within === null) return null;
  return judge(metric.better, ratio, range, metric.better === 'higher' ? 1 - metric.within : 1 + metric.within);
}

/** The interval of per-repetition ratios, as text: [low-high]. */
function formatInterval(range) {
  return `[${formatRatio(range.low)}-${formatRatio(range.high)}]`;
}

function printTable(records) {
  // One table per suite: each has its own columns.
  for (const suite of SUITES) {
    const own = records.filter((record) => record.suite === suite.name);
    if (own.length > 0) printSuiteTable(suite, own);
  }
  console.log(
    [
      'Ratios are plain value ratios of the medians shown (a/b). For GB/s, conn/s and msg/s higher is better,',
      'so ipc/node > 1 means interprocess is faster; for µs (latency) lower is better, so ipc/node < 1 means',
      'interprocess is faster. Targets (target column): local sockets within 10% of node (connection rate',
      '15%); pipes and FIFOs at least node\'s throughput and p50 latency within 10%; unix-socket rows against',
      'the best npm peer; channel rows against the better child_process IPC column (and rates 5x node-ipc);',
      'p99 and rt/s are shown for information only. spread: (max - min) / median of the runs, the larger of',
      'interprocess\'s and its counterpart\'s; a row that spreads over 25% gets more runs (up to --max-reps).',
      '[low-high] after a ratio: the lowest and highest of the ratios of single repetitions (each repetition runs',
      'every column once, side by side in time). ok: the median ratio and every repetition\'s meet the target;',
      'MISS: none does; unsure: the interval straddles the target, so the runs cannot say (rerun on an idle',
      'machine, or pinned).',
      ...SUITES.map((suite) => `node column for ${suite.name}: ${suite.nodeCounterpart}.`),
      'peer (unix-socket rows): the better of the npm peers unix-dgram and node-unix-socket for that metric.',
      `C column: ${cBuild.ok ? `the bench/c baseline, ${cBuild.flags}` : `unavailable (${cBuild.reason})`}. Median of ${flags.reps} run(s) (up to ${flags.maxReps} where they spread); each peer is a separate process.`,
    ].join('\n'),
  );
}

function printSuiteTable(suite, records) {
  const implementations = implementationsOf(suite);
  const title = counterpartTitle(suite);
  const columns = [
    { title: 'row', align: 'left' },
    { title: 'metric', align: 'left' },
    ...implementations.map(({ title: t }) => ({ title: t, align: 'right' })),
    { title: `ipc/${title}`, align: 'right' },
    { title: 'ipc/C', align: 'right' },
    { title: `${title}/C`, align: 'right' },
    { title: 'spread', align: 'right' },
    { title: `target (ipc/${title})`, align: 'left' },
  ];
  const lines = [];
  for (const record of records) {
    const name = record.id;
    if (record.skipped) {
      lines.push([name, 'skipped (see below)']);
      continue;
    }
    Object.values(record.metrics).forEach((metric, i) => {
      const cells = implementations.map(({ key }) => {
        if (metric.values[key].median !== null) return formatValue(metric.values[key].median);
        const why = record.errors[key]?.[0]?.split('\n')[0];
        return why && why.length <= 40 ? why : 'failed';
      });
      const arrow = metric.better === 'higher' ? '(higher=better)' : '(lower=better)';
      const target = metric.status === null ? '(info only)' : `${metric.status} ${metric.target}`;
      const { interprocessToCounterpart, interprocessToC, counterpartToC } = metric.ratios;
      const within = (range) => (range ? ` ${formatInterval(range)}` : '');
      const spreads = [metric.ratios.interprocess, ...counterpartsOf(suite)].map((key) => metric.values[key]?.spread).filter((x) => x != null);
      const spread = spreads.length > 0 ? `${Math.round(Math.max(...spreads) * 100)}%` : '-';
      // With several columns of ours (the channel's codecs), the ratios name the one they use.
      const which = ownOf(suite).length > 1 ? ` ${implementations.find((impl) => impl.key === metric.ratios.interprocess)?.short ?? ''}` : '';
      lines.push([
        i === 0 ? name : '',
        `${metric.unit} ${arrow}`,
        ...cells,
        `${formatRatio(interprocessToCounterpart)}${which}${within(metric.intervals.interprocessToCounterpart)}`,
        `${formatRatio(interprocessToC)}${within(metric.intervals.interprocessToC)}`,
        formatRatio(counterpartToC),
        spread,
        target,
      ]);
    });
  }
  console.log(`\n${renderTable(columns, lines)}\n`);
  for (const record of records) console.log(`${record.id}: ${record.label}${record.pinned ? ' (taskset -c 0)' : ''}`);
  for (const record of records.filter((r) => r.skipped)) console.log(`Skipped ${record.id}: ${record.skipped}`);
  console.log();
}

const records = [];
for (const row of rows) records.push(await runRow(row));
printTable(records);

const finishedAt = new Date();
const output = {
  harness: 'interprocess bench',
  startedAt: startedAt.toISOString(),
  finishedAt: finishedAt.toISOString(),
  durationSeconds: (finishedAt - startedAt) / 1000,
  options: { quick: flags.quick, only: flags.only, reps: flags.reps, maxReps: flags.maxReps, pipeSize: flags.pipeSize },
  machine,
  cBaseline: cBuild.ok ? { compiler: cBuild.compiler, flags: cBuild.flags } : { unavailable: cBuild.reason },
  pinning: noPinning === null ? 'taskset -c 0' : { unavailable: noPinning },
  rows: records,
};
const json = `${JSON.stringify(output, null, 2)}\n`;
const written = [];
if (flags.json) {
  mkdirSync(path.dirname(path.resolve(flags.json)), { recursive: true });
  writeFileSync(flags.json, json);
  written.push(flags.json);
} else {
  const resultsDir = path.join(benchDir, 'results');
  mkdirSync(resultsDir, { recursive: true });
  for (const name of ['latest.json', `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`]) {
    writeFileSync(path.join(resultsDir, name), json);
    written.push(path.relative(process.cwd(), path.join(resultsDir, name)));
  }
}
console.log(`\nResults: ${written.join(', ')} (${output.durationSeconds.toFixed(0)} s)`);
if (failures > 0) {
  console.error(`${failures} measurement(s) failed; see the errors above and in the JSON.`);
  process.exit(1);
}
