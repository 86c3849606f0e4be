#!/usr/bin/env node
// npm run prebuild [-- TARGET ...]: the Node-API binaries we ship, all cross-built on this Linux
// machine, into prebuilds/<platform>-<arch>/ where node-gyp-build looks for them. Node-API is
// ABI-stable, so one binary per target serves every Node version.
//
// The source list and flags always come from binding.gyp, never from a list kept here:
// - Linux targets are built by node-gyp itself (the same build as `npm rebuild`), with the
//   target's cross compiler as CC and LINK, in a scratch copy of binding.gyp and native/.
// - win32 is built with mingw-w64: gyp evaluates binding.gyp for OS=win (its gypd output gives
//   the sources, defines and flags), and the Node-API and libuv functions the objects need are
//   imported from node.exe through a delay-load import library made from their undefined symbols.
//
//   node scripts/prebuild.js --list    the targets as JSON (file, compiler, Debian package)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODULE = 'interprocess';

/** Every target we ship. `file` is relative to the package root; `apt` provides `cc`. */
export const targets = [
  { id: 'linux-x64-glibc', platform: 'linux', arch: 'x64', libc: 'glibc', cc: 'gcc', strip: 'strip', apt: 'gcc' },
  { id: 'linux-x64-musl', platform: 'linux', arch: 'x64', libc: 'musl', cc: 'musl-gcc', strip: 'strip', apt: 'musl-tools' },
  { id: 'linux-arm64-glibc', platform: 'linux', arch: 'arm64', libc: 'glibc', cc: 'aarch64-linux-gnu-gcc', strip: 'aarch64-linux-gnu-strip', apt: 'gcc-aarch64-linux-gnu' },
  { id: 'win32-x64', platform: 'win32', arch: 'x64', cc: 'x86_64-w64-mingw32-gcc', strip: 'x86_64-w64-mingw32-strip', apt: 'gcc-mingw-w64-x86-64' },
].map((t) => ({
  ...t,
  // node-gyp-build's naming: napi = any Node version; the libc tag tells glibc from musl.
  file: path.posix.join('prebuilds', `${t.platform}-${t.arch}`, [MODULE, 'napi', t.libc, 'node'].filter(Boolean).join('.')),
}));

function run(command, args, options = {}) {
  execFileSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
}

function have(command) {
  try {
    execFileSync('sh', ['-c', `command -v "$1"`, 'sh', command], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The Node headers to build against (node_api.h and uv.h). Node-API's are version-independent. */
function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, path.resolve(process.execPath, '..', '..')].filter(Boolean);
  for (const dir of candidates) {
    const include = path.join(dir, 'include', 'node');
    if (fs.existsSync(path.join(include, 'node_api.h')) && fs.existsSync(path.join(include, 'uv.h'))) return dir;
  }
  throw new Error(`No Node headers (include/node/node_api.h and uv.h) under ${candidates.join(' or ')}: set npm_config_nodedir.`);
}

/** A scratch copy of what a source build uses (binding.gyp, native/), so build/ here is left alone. */
function scratchCopy(work) {
  fs.mkdirSync(work, { recursive: true });
  fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(work, 'binding.gyp'));
  fs.cpSync(path.join(root, 'native'), path.join(work, 'native'), { recursive: true });
  return work;
}

function buildWithNodeGyp(target, work, nodedir) {
  const gyp = path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const env = { ...process.env, CC: target.cc, CXX: target.cc, LINK: target.cc };
  run(process.execPath, [gyp, 'rebuild', `--arch=${target.arch}`, `--nodedir=${nodedir}`, '--jobs=max', '--loglevel=warn'], { cwd: work, env });
  return path.join(work, 'build', 'Release', `${MODULE}.node`);
}

/** binding.gyp with its conditions evaluated for a platform, by gyp itself (gypd output). */
function resolvedTarget(work, variables) {
  fs.writeFileSync(path.join(work, 'defaults.gypi'), "{'target_defaults': {'type': 'loadable_module'}}\n");
  const gyp = path.join(root, 'node_modules', 'node-gyp', 'gyp', 'gyp_main.py');
  const defines = Object.entries(variables).map(([k, v]) => `-D${k}=${v}`);
  run('python3', [gyp, 'binding.gyp', '-f', 'gypd', '--depth=.', '-I', 'defaults.gypi', ...defines], { cwd: work });
  const json = execFileSync('python3', ['-c', 'import ast, json, sys; print(json.dumps(ast.literal_eval(open(sys.argv[1]).read())))', 'binding.gypd'], { cwd: work, encoding: 'utf8' });
  const found = JSON.parse(json).targets.filter((t) => t.target_name === MODULE);
  if (found.length !== 1) throw new Error(`binding.gyp must have exactly one target named ${MODULE}`);
  const t = found[0];
  const config = t.configurations?.[t.default_configuration] ?? {};
  const list = (key) => [...(t[key] ?? []), ...(config[key] ?? [])];
  return {
    sources: list('sources'),
    defines: list('defines'),
    includeDirs: list('include_dirs'),
    cflags: [...list('cflags'), ...list('cflags_c')],
    ldflags: list('ldflags'),
    libraries: list('libraries'),
  };
}

function buildWindows(target, work, nodedir) {
  const spec = resolvedTarget(work, { OS: 'win', target_arch: target.arch });
  const tool = (name) => target.cc.replace(/gcc$/, name);
  const include = ['-I', path.join(nodedir, 'include', 'node'), ...spec.includeDirs.flatMap((d) => ['-I', path.resolve(work, d)])];
  const defines = [...spec.defines, `NODE_GYP_MODULE_NAME=${MODULE}`, 'BUILDING_NODE_EXTENSION', 'USING_UV_SHARED=1', 'WIN32', '_WIN32_WINNT=0x0A00'].map((d) => `-D${d}`);
  const objects = spec.sources.map((source, i) => {
    if (!/\.c$/.test(source)) throw new Error(`the win32 prebuild compiles C only; binding.gyp lists ${source}`);
    const object = path.join(work, `${i}-${path.basename(source, '.c')}.o`);
    run(target.cc, ['-c', path.resolve(work, source), '-o', object, ...include, ...defines, ...spec.cflags]);
    return object;
  });
  const hook = path.join(work, 'win-delay-load-hook.o');
  run(target.cc, ['-c', path.join(root, 'scripts', 'win-delay-load-hook.c'), '-o', hook, '-O2', '-Wall']);

  // What the objects import from Node: every undefined Node-API and libuv symbol.
  const undefinedSymbols = execFileSync(tool('nm'), ['-u', '-P', ...objects], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0]?.replace(/^__imp_/, ''))
    .filter((name) => /^(napi_|node_api_|uv_)/.test(name ?? ''));
  const imports = [...new Set(undefinedSymbols)].sort();
  const def = path.join(work, 'node.def');
  fs.writeFileSync(def, `LIBRARY node.exe\nEXPORTS\n${imports.map((s) => `  ${s}\n`).join('')}`);
  const importLibrary = path.join(work, 'libnode-delay.a');
  run(tool('dlltool'), ['-d', def, '-D', 'node.exe', '--output-delaylib', importLibrary]);

  const output = path.join(work, `${MODULE}.node`);
  const libraries = spec.libraries.map((l) => (/^-/.test(l) ? l : `-l${l.replace(/\.lib$/i, '')}`));
  run(target.cc, ['-shared', '-o', output, ...objects, hook, importLibrary, ...spec.ldflags, ...libraries, '-static-libgcc', '-Wl,--no-undefined']);
  return output;
}

function main(argv) {
  if (argv.includes('--list')) {
    console.log(JSON.stringify(targets, null, 2));
    return;
  }
  const chosen = argv.length === 0 ? targets : argv.map((id) => targets.find((t) => t.id === id) ?? fail(`unknown target ${id}; targets: ${targets.map((t) => t.id).join(', ')}`));
  const missing = chosen.filter((t) => !have(t.cc));
  if (missing.length > 0) {
    fail(`missing cross compilers: ${missing.map((t) => `${t.cc} (${t.id})`).join(', ')}.\n` +
      `Install them with: apt-get install ${[...new Set(missing.map((t) => t.apt))].join(' ')}   (or run bash scripts/install-test-tools.sh)`);
  }
  const nodedir = nodeDir();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'interprocess-prebuild-'));
  try {
    if (argv.length === 0) fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
    for (const target of chosen) {
      console.log(`\n=== prebuild ${target.id} (${target.cc})`);
      const work = scratchCopy(path.join(scratch, target.id));
      const built = target.platform === 'win32' ? buildWindows(target, work, nodedir) : buildWithNodeGyp(target, work, nodedir);
      run(target.strip, [built]);
      const destination = path.join(root, target.file);
      fs.mkdirSync(path.dirname(destination), { recursive: true });
      fs.copyFileSync(built, destination);
      console.log(`${target.file}: ${fs.statSync(destination).size} bytes`);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
