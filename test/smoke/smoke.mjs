// The smoke test of the installed package. The package tests copy this folder into a fresh
// project that has the packed `interprocess` installed and run `node smoke.mjs` there: on each
// Node version, and for the other targets under qemu (linux-arm64) and Wine (win32-x64).
//
// One file per primitive, `*.smoke.mjs` in this folder, run in name order: each exports `title`,
// `run(smoke)` and, if it needs a second process, `child(args)`. Every check prints a line
// (`ok - ...`, or `note - ...` for what cannot be checked on this platform, and why); the first
// failure prints `FAIL - ...` and exits 1. The last line is `smoke passed: N checks`.
//
// Child processes run `node smoke.mjs --child FILE ARGS...`, started by process.execPath, or by
// the JSON array in INTERPROCESS_SMOKE_LAUNCHER (e.g. ["qemu-aarch64-static", "/path/to/node"])
// where this process cannot exec its own node (qemu-user without binfmt_misc).
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const self = fileURLToPath(import.meta.url);
const load = (file) => import(pathToFileURL(path.join(here, file)).href);

if (process.argv[2] === '--child') {
  const [file, ...args] = process.argv.slice(3);
  await (await load(file)).child(args);
} else {
  let checks = 0;
  let counter = 0;
  const smoke = {
    platform: process.platform,
    /** Runs one named check; a throw fails the whole smoke test. */
    async check(label, fn) {
      try {
        const detail = await fn();
        checks++;
        console.log(`ok - ${label}${detail ? `: ${detail}` : ''}`);
      } catch (error) {
        console.log(`FAIL - ${label}: ${error?.stack ?? error}`);
        process.exit(1);
      }
    },
    /** Says what this platform cannot check, and why (never silently). */
    note(message) {
      console.log(`note - ${message}`);
    },
    uniqueName(prefix) {
      return `${prefix}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
    },
    /** How to start a node process here: [command, ...leading args]. */
    launcher: process.env.INTERPROCESS_SMOKE_LAUNCHER ? JSON.parse(process.env.INTERPROCESS_SMOKE_LAUNCHER) : [process.execPath],
    /** The arguments that run `child(args)` of `file` (after the launcher). */
    childArgs: (file, args) => [self, '--child', file, ...args],
    /** Starts `child(args)` of `file` in a new process; resolves with { pid, exited: Promise<code> }. */
    spawnChild(file, args) {
      const launcher = smoke.launcher;
      const child = spawn(launcher[0], [...launcher.slice(1), self, '--child', file, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
      const exited = new Promise((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : code));
      });
      return { pid: child.pid, exited, kill: () => child.kill() };
    },
  };
  console.log(`smoke: node ${process.version} ${process.platform}-${process.arch}`);
  for (const file of readdirSync(here).filter((f) => f.endsWith('.smoke.mjs')).sort()) {
    const primitive = await load(file);
    console.log(`# ${primitive.title}`);
    await primitive.run(smoke);
  }
  console.log(`smoke passed: ${checks} checks`);
}
