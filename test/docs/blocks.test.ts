// Every code block of README.md and docs/*.md runs here, on the Node that runs the suite (.ci/run
// runs it on Node 20, 22, 24 and 26), so no example can rot:
//
// - ts blocks are type-checked by the project's tsc (strict, module nodenext) against the built
//   package, then compiled and run as ES modules; js blocks are type-checked too (checkJs) and run
//   verbatim, as .mjs, or as .cjs when they use require() (or are named *.cjs);
// - each runs in a scratch directory made like `npm init -y` (CommonJS, so an example must be an
//   .mjs file or say so), with the package in node_modules, TMPDIR pointing into it, and must exit
//   by itself with code 0 within BLOCK_TIMEOUT; a comment `// prints: TEXT` in a block promises a
//   line of its standard output (`...` matches anything), and the test checks it;
// - sh blocks are checked by `bash -n`, and run when marked `run`; python blocks are compiled;
//   text blocks (diagrams, output) are listed as not code. A fence without a language fails.
//
// An HTML comment right before a block (invisible to the reader) says what the block needs:
//   <!-- test: name=server.mjs companion -->        the block's file name; `companion`: it runs
//                                                   only as the peer or file of another block
//   <!-- test: name=client.mjs peer=server.mjs -->  start block server.mjs first, then this one;
//                                                   both must exit 0 by themselves
//   <!-- test: with=child.mjs -->                   write block child.mjs beside this one
//   <!-- test: context=unix-socket -->              a fragment: test/docs/contexts/unix-socket.mjs
//                                                   (run first with --import) defines its free
//                                                   variables, and unix-socket.d.ts types them
//   <!-- test: node=24 -->                          run only on Node 24 or later (await using):
//                                                   only type-checked before
//   <!-- test: platform=win32 -->                   run only there; elsewhere type-checked (and
//                                                   `node --check`ed) only
//   <!-- test: norun="why" -->                      checked but never run, for the reason given
// Every block that is not run says why in its test's name, so nothing is skipped silently.
// Failures name the block as file:line (the line of its opening fence, and the line inside it).
// Blocks run three at a time, except that blocks using the same abstract name (nsName('my-app'))
// take turns. `npx interprocess` in a shell block runs the package's bin directly (a shim on PATH).
// A comment `// the worker prints: TEXT` promises a line of what a child writes to the inherited stdout.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const contexts = path.join(root, 'test', 'docs', 'contexts');
const major = Number(process.versions.node.split('.')[0]);
/** How long a block (and its peers) may take: a quiet run takes 1 to 3 s; 3x margin and more for a loaded machine. */
const BLOCK_TIMEOUT = 30_000;

interface Block {
  /** README.md or docs/x.md */
  doc: string;
  /** 1-based line of the opening fence; the block's first line is line + 1. */
  line: number;
  lang: string;
  code: string;
  directives: Map<string, string>;
  /** File name in the scratch directory. */
  file: string;
}

const where = (b: Block): string => `${b.doc}:${b.line}`;

function parseDirectives(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const m of text.matchAll(/([\w-]+)(?:=("[^"]*"|\S+))?/g)) map.set(m[1]!, (m[2] ?? '').replace(/^"|"$/g, ''));
  return map;
}

function readBlocks(doc: string): Block[] {
  const lines = fs.readFileSync(path.join(root, doc), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const lang = open[2]!.trim().split(/\s+/)[0] ?? '';
    let end = i + 1;
    while (end < lines.length && lines[end]!.trimEnd() !== fence) end++;
    assert.ok(end < lines.length, `${doc}:${i + 1}: code block never closed`);
    // The directive comment: the nearest non-blank line above the fence.
    let above = i - 1;
    while (above >= 0 && lines[above]!.trim() === '') above--;
    const comment = above >= 0 ? /^<!--\s*test:(.*)-->\s*$/.exec(lines[above]!) : null;
    const directives = parseDirectives(comment?.[1] ?? '');
    const line = i + 1;
    const code = lines.slice(i + 1, end).join('\n') + '\n';
    const ext = lang === 'ts' ? '.ts' : lang === 'js' ? (/\brequire\(/.test(code) && !/^\s*import\s/m.test(code) ? '.cjs' : '.mjs') : `.${lang || 'txt'}`;
    const base = `${doc.replace(/[/.]/g, '-')}-L${line}`;
    blocks.push({ doc, line, lang, code, directives, file: directives.get('name') ?? `${base}${ext}` });
    i = end;
  }
  return blocks;
}

const docs = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const blocks = docs.flatMap(readBlocks);
const byName = (b: Block, name: string): Block | undefined => blocks.find((x) => x.doc === b.doc && x.file === name);
const isCode = (b: Block): boolean => b.lang === 'ts' || b.lang === 'js';
/** The file a block runs as: ts blocks compiled to .mjs (.cjs for a .cts name). */
const runName = (b: Block): string => (b.lang === 'ts' ? b.file.replace(/\.cts$/, '.cjs').replace(/\.m?ts$/, '.mjs') : b.file);
/** Where tsc sees a block: a directory per page (names repeat across pages); a ts block named *.mjs is checked as *.mts. */
const checkName = (b: Block): string =>
  path.join(b.doc.replace(/[/.]/g, '-'), b.lang === 'ts' ? b.file.replace(/\.mjs$/, '.mts').replace(/\.cjs$/, '.cts').replace(/\.js$/, '.ts') : b.file);
/** What tsc emits for a ts block. */
const emittedName = (b: Block): string => checkName(b).replace(/\.ts$/, '.js').replace(/\.mts$/, '.mjs').replace(/\.cts$/, '.cjs');
const key = (b: Block): string => `${b.doc}/${b.file}`;

/** Why a block is not run here (null: it runs). */
function notRun(b: Block): string | null {
  if (b.lang === 'text') return 'not code (text)';
  if (b.lang === 'python') return 'a Python peer: compiled with python3, not run';
  if (!['ts', 'js', 'sh'].includes(b.lang)) return `unknown language '${b.lang}'`;
  const norun = b.directives.get('norun');
  if (norun !== undefined) return `not run: ${norun || 'no reason given'}`;
  if (b.directives.has('companion')) return null; // runs as another block's peer or file
  const platform = b.directives.get('platform');
  if (platform && platform !== process.platform) return `${platform} only: type-checked${b.lang === 'sh' ? '' : ' and syntax-checked'}, not run on ${process.platform}`;
  const node = Number(b.directives.get('node') ?? 0);
  if (major < node) return `needs Node ${node}+ (await using / using): type-checked only on Node ${major}`;
  if (b.lang === 'sh' && !b.directives.has('run')) return 'shell, syntax-checked (bash -n) only';
  return null;
}

let work = '';
/** tsc's diagnostics, by key(block). */
const diagnostics = new Map<string, string[]>();
/** tsc's errors that name no block (its configuration, say). */
const unmapped: string[] = [];

function makeScratch(dir: string): void {
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  // What `npm init -y` writes (npm 11: "type": "commonjs"), so a .js file is CommonJS.
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', type: 'commonjs' }, null, 2));
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'interprocess'), 'dir');
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'));
  fs.symlinkSync(path.join(root, 'bin', 'interprocess.js'), path.join(dir, 'node_modules', '.bin', 'interprocess'));
  // `npx interprocess ...` runs the package's bin from node_modules/.bin as npx would, without
  // npx's own seconds of start-up (npx is npm's, not ours to test).
  fs.writeFileSync(path.join(dir, 'node_modules', '.bin', 'npx'), '#!/bin/sh\nexec "$(dirname "$0")/$@"\n', { mode: 0o755 });
  fs.mkdirSync(path.join(dir, 'tmp'));
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ipc-docs-'));
  // One tsc program for every ts and js block: check/ holds each block, with its context's
  // declarations appended (after the code, so that line numbers stay the block's own).
  const check = path.join(work, 'check');
  makeScratch(check);
  fs.writeFileSync(path.join(check, 'package.json'), JSON.stringify({ name: 'check', private: true, type: 'module' }));
  const files: string[] = [];
  for (const b of blocks.filter(isCode)) {
    const context = b.directives.get('context');
    let text = b.code;
    if (context) {
      assert.equal(b.lang, 'ts', `${where(b)}: a block with a context must be ts (its declarations are TypeScript)`);
      text += `\n${fs.readFileSync(path.join(contexts, `${context}.d.ts`), 'utf8')}`;
    }
    fs.mkdirSync(path.dirname(path.join(check, checkName(b))), { recursive: true });
    fs.writeFileSync(path.join(check, checkName(b)), text);
    files.push(checkName(b));
  }
  fs.writeFileSync(path.join(check, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'nodenext', moduleResolution: 'nodenext', target: 'esnext', lib: ['esnext'], strict: true, types: ['node'],
      typeRoots: [path.join(root, 'node_modules', '@types')], skipLibCheck: true, allowJs: true, checkJs: true,
      esModuleInterop: true, moduleDetection: 'force', outDir: 'out', rootDir: '.', noEmitOnError: false, pretty: false,
    },
    files,
  }));
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', check], { encoding: 'utf8', cwd: check });
  for (const text of (tsc.stdout + tsc.stderr).split('\n').filter((l) => /error/.test(l))) {
    const m = /^([^\s(]+)\((\d+),(\d+)\): (error TS\d+: .*)$/.exec(text);
    const b = m ? blocks.find((x) => isCode(x) && path.resolve(check, checkName(x)) === path.resolve(check, m[1]!)) : undefined;
    if (!m || !b) {
      unmapped.push(text);
      continue;
    }
    diagnostics.set(key(b), [...(diagnostics.get(key(b)) ?? []), `${b.doc}:${b.line + Number(m[2])}:${m[3]}: ${m[4]}`]);
  }
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

interface Run { code: number | null; signal: string | null; stdout: string; stderr: string; timedOut: boolean }

function start(command: string, args: string[], cwd: string): { child: ReturnType<typeof spawn>; done: Promise<Run> } {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: path.join(cwd, 'tmp'), PATH: `${path.join(cwd, 'node_modules', '.bin')}${path.delimiter}${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` };
  delete env.NODE_OPTIONS;
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, BLOCK_TIMEOUT);
  const done = new Promise<Run>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
  return { child, done };
}

/** Writes a block into dir as the file it runs as (compiled from tsc's output for ts). */
function place(b: Block, dir: string): string {
  const name = runName(b);
  const source = b.lang === 'ts' ? path.join(work, 'check', 'out', emittedName(b)) : null;
  const text = source ? fs.readFileSync(source, 'utf8') : b.code;
  fs.writeFileSync(path.join(dir, name), text);
  return name;
}

function commandFor(b: Block, name: string): [string, string[]] {
  if (b.lang === 'sh') return ['bash', ['-e', name]];
  const context = b.directives.get('context');
  const imports = context ? ['--import', pathToFileURL(path.join(contexts, `${context}.mjs`)).href] : [];
  return [process.execPath, [...imports, name]];
}

/** The lines the block promises on stdout: `// prints: TEXT` (`# prints:` in shell), `...` matching anything. */
function promised(b: Block): Array<{ line: number; pattern: RegExp }> {
  const out: Array<{ line: number; pattern: RegExp }> = [];
  b.code.split('\n').forEach((text, i) => {
    const m = /(?:\/\/|#)(?: [\w ]*?)? prints: (.*)$/.exec(text);
    if (!m) return;
    const body = m[1]!.trim().split('...').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    out.push({ line: b.line + 1 + i, pattern: new RegExp(`^${body}$`, 'm') });
  });
  return out;
}

function describe(b: Block, name: string, r: Run): string {
  const why = r.timedOut ? `did not exit by itself within ${BLOCK_TIMEOUT / 1000} s` : `exited with ${r.code ?? r.signal}`;
  return `${where(b)} (${name}) ${why}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

async function runBlock(b: Block): Promise<void> {
  const dir = fs.mkdtempSync(path.join(work, 'run-'));
  makeScratch(dir);
  const withNames = (b.directives.get('with') ?? '').split(',').filter(Boolean);
  for (const name of withNames) place(byName(b, name)!, dir);
  const peers = (b.directives.get('peer') ?? '').split(',').filter(Boolean).map((name) => byName(b, name)!);
  const started = peers.map((p) => {
    for (const name of (p.directives.get('with') ?? '').split(',').filter(Boolean)) place(byName(p, name)!, dir);
    const name = place(p, dir);
    return { block: p, name, ...start(...commandFor(p, name), dir) };
  });
  const name = place(b, dir);
  const main = start(...commandFor(b, name), dir);
  const results = await Promise.all([main.done, ...started.map((s) => s.done)]);
  const all = [{ block: b, name, result: results[0]! }, ...started.map((s, i) => ({ block: s.block, name: s.name, result: results[i + 1]! }))];
  for (const { block, name: n, result } of all) {
    assert.ok(result.code === 0 && !result.timedOut, describe(block, n, result));
    for (const { line, pattern } of promised(block)) {
      assert.match(result.stdout, pattern, `${block.doc}:${line}: promised output ${pattern} missing\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`);
    }
  }
}

test('every fence names its language, and every directive names a block of its page', () => {
  const problems: string[] = [];
  for (const b of blocks) {
    if (!['ts', 'js', 'sh', 'python', 'text'].includes(b.lang)) problems.push(`${where(b)}: fence language '${b.lang}' (use ts, js, sh, python or text)`);
    for (const key of b.directives.keys()) {
      if (!['name', 'peer', 'with', 'companion', 'context', 'node', 'platform', 'norun', 'run'].includes(key)) problems.push(`${where(b)}: unknown directive ${key}`);
    }
    for (const key of ['peer', 'with']) {
      for (const name of (b.directives.get(key) ?? '').split(',').filter(Boolean)) {
        if (!byName(b, name)) problems.push(`${where(b)}: ${key}=${name} names no block of ${b.doc}`);
      }
    }
    if (b.directives.has('companion') && !blocks.some((x) => x.doc === b.doc && [x.directives.get('peer'), x.directives.get('with')].some((v) => v?.split(',').includes(b.file)))) {
      problems.push(`${where(b)}: companion ${b.file} is used by no block`);
    }
    const context = b.directives.get('context');
    if (context && !fs.existsSync(path.join(contexts, `${context}.mjs`))) problems.push(`${where(b)}: no context ${context}`);
  }
  problems.push(...unmapped.map((text) => `tsc: ${text}`));
  const names = blocks.map((b) => `${b.doc}/${b.file}`);
  for (const n of new Set(names)) if (names.filter((x) => x === n).length > 1) problems.push(`two blocks named ${n}`);
  assert.deepEqual(problems, []);
});

/** The names a block binds or connects to that other processes could share (abstract socket names). */
function sharedNames(b: Block): string[] {
  const related = [b, ...['peer', 'with'].flatMap((key) => (b.directives.get(key) ?? '').split(',').filter(Boolean).map((n) => byName(b, n)!))];
  const context = b.directives.get('context');
  const texts = [...related.map((x) => x.code), context ? fs.readFileSync(path.join(contexts, `${context}.mjs`), 'utf8') : ''];
  return [...new Set(texts.flatMap((text) => [...text.matchAll(/nsName\('([^']+)'\)|\s@([\w-]+)/g)].map((m) => m[1] ?? m[2]!)))];
}

/** Blocks that use the same abstract name take turns; the others run side by side. */
const locks = new Map<string, Promise<void>>();
async function withNames<T>(names: string[], fn: () => Promise<T>): Promise<T> {
  const previous = names.map((n) => locks.get(n) ?? Promise.resolve());
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const chained = Promise.all(previous).then(() => mine);
  for (const n of names) locks.set(n, chained);
  await Promise.all(previous);
  try {
    return await fn();
  } finally {
    release();
  }
}

test('code blocks', { concurrency: 3 }, async (t) => {
  await Promise.all(blocks.map((b) => {
    const reason = notRun(b);
    const companion = b.directives.has('companion');
    const label = `${where(b)} ${b.lang} ${b.file}: ${reason ?? (companion ? 'runs as the peer or file of another block' : 'runs')}`;
    return t.test(label, { timeout: BLOCK_TIMEOUT * 3 }, async () => {
      if (isCode(b)) {
        assert.deepEqual(diagnostics.get(key(b)) ?? [], [], `tsc found errors in ${where(b)}`);
      }
      if (!['ts', 'js', 'sh', 'python'].includes(b.lang)) return; // text, or refused by the first test
      if (b.lang === 'python') {
        const python = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], { input: b.code, encoding: 'utf8' });
        assert.equal(python.status, 0, `${where(b)}: ${python.stderr}`);
        return;
      }
      if (b.lang === 'sh') {
        const bash = spawnSync('bash', ['-n'], { input: b.code, encoding: 'utf8' });
        assert.equal(bash.status, 0, `${where(b)}: ${bash.stderr}`);
      }
      if (reason === null && !companion) return withNames(sharedNames(b), () => runBlock(b));
      // Not run (or run by another block): at least Node's parser accepts it, where this Node can.
      if (isCode(b) && major >= Number(b.directives.get('node') ?? 0)) {
        const dir = fs.mkdtempSync(path.join(work, 'syntax-'));
        const name = place(b, dir);
        const check = spawnSync(process.execPath, ['--check', name], { cwd: dir, encoding: 'utf8' });
        assert.equal(check.status, 0, `${where(b)}: node --check: ${check.stderr}`);
      }
    });
  }));
});
