// Fuzzes every entry point of the C core from JS, in a child process so that a crash is seen as
// its signal: random types, lengths, negative and huge numbers, closed and foreign descriptors,
// getters that throw, detach or resize buffers, or call the addon again mid-call. The child must
// exit normally, and every throw must be an InterprocessError with a code. Seeded and bounded.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { optionalNative } from '#internal/native/addon.js';
import { scratchDir } from '../helpers.js';

const fixture = fileURLToPath(new URL('../fixtures/native-fuzz.js', import.meta.url));
const skip = process.platform === 'win32' ? 'the Unix entry points (named pipes are fuzzed by the Windows suite)' : !optionalNative() && 'the addon did not load';

for (const seed of [1, 2, 3, 4]) {
  test(`fuzzing every native entry point (seed ${seed}): no crash, only typed errors`, { skip, timeout: 120_000 }, async (t) => {
    const dir = scratchDir(t);
    const child = spawn(process.execPath, [fixture, String(seed), '2500'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
    assert.equal(signal, null, `the fuzzed process died of ${signal}:\n${err.slice(-4000)}`);
    assert.equal(code, 0, `the fuzzed process exited with ${code}:\n${err.slice(-4000)}`);
    assert.ok(out.trim().length > 0, `the fuzzed process printed no report:\n${err.slice(-4000)}`);
    const report = JSON.parse(out.trim().split('\n').pop()!) as { unexpected: string[]; unexpectedCount: number; functions: number; byName: Record<string, { calls: number; threw: number }> };
    assert.deepEqual(report.unexpected, [], 'every throw is an InterprocessError with a code');
    assert.ok(report.functions >= 30, `every entry point was called (${report.functions})`);
    assert.doesNotMatch(err, /AddressSanitizer|runtime error:/, 'no sanitizer report');
  });
}
