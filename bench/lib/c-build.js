// Compiles every bench/c/*.c with `cc -O2` into bench/.c-build/ (fresh each run: it takes a
// fraction of a second and can never be stale).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';

export const C_FLAGS = ['-O2', '-Wall'];

/**
 * Returns { ok: true, compiler, flags, binaries: { name: path } }, or { ok: false, reason }
 * when there is no cc or a program does not compile; the C column then shows the reason.
 */
export function buildC(sourceDir, outDir) {
  const version = spawnSync('cc', ['--version'], { encoding: 'utf8' });
  if (version.error) {
    return { ok: false, reason: version.error.code === 'ENOENT' ? 'no cc' : `cc: ${version.error.message}` };
  }
  mkdirSync(outDir, { recursive: true });
  const binaries = {};
  for (const file of readdirSync(sourceDir).filter((name) => name.endsWith('.c')).sort()) {
    const name = file.slice(0, -2);
    const output = path.join(outDir, name);
    const compiled = spawnSync('cc', [...C_FLAGS, '-o', output, path.join(sourceDir, file)], { encoding: 'utf8' });
    if (compiled.status !== 0) {
      return { ok: false, reason: `cc failed on ${file}`, detail: `${compiled.stderr}${compiled.error?.message ?? ''}` };
    }
    binaries[name] = output;
  }
  return { ok: true, compiler: version.stdout.split('\n')[0], flags: C_FLAGS.join(' '), binaries };
}
