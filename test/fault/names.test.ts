// Name fuzzing on every entry point that takes a name: random strings (NUL, separators, lone
// surrogates, multibyte, up to 300 characters), non-strings and hostile objects. Each call
// succeeds (then it is closed) or fails with an InterprocessError: never a crash, a plain Error,
// a leaked descriptor, or a file outside the scratch directory.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as ipc from 'interprocess';
import { openFds, scratchDir } from '../helpers.js';
import { fdsBack, figure, typed } from './fault.js';

let x = 12345;
const rand = (n: number) => {
  x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
  return x % n;
};
const PIECES = ['a', 'Z', '0', '.', '-', '_', '/', '\\', '@', '\0', ' ', 'é', '€', '😀', '\ud800', '\udc00', ':', '%', '\n', '\u202e', 'pipe', '\\\\.\\pipe\\'];

/** A random name under `dir` (an absolute path is rebased there; no `..` escapes it). */
function randomName(dir: string): unknown {
  switch (rand(10)) {
    case 0: return [undefined, null, 42, -1, NaN, true, {}, [], Symbol('s'), () => 'x', 10n, Buffer.from('abc')][rand(12)];
    case 1: return { toString() { throw new Error('hostile toString'); } };
    case 2: return 'x'.repeat(rand(400));
    case 3: return '';
    default: {
      let s = '';
      const n = 1 + rand(40);
      for (let i = 0; i < n; i++) s += PIECES[rand(PIECES.length)];
      s = s.replace(/\.\./g, '._');
      if (rand(3) === 0) {
        try {
          return ipc.nsName(s); // a name object, when the string is a valid one
        } catch {
          return s.startsWith('/') ? path.join(dir, s) : s;
        }
      }
      return s.startsWith('/') ? path.join(dir, s) : s;
    }
  }
}

function describe(value: unknown): string {
  try {
    return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'symbol' || typeof value === 'bigint' || typeof value === 'function' ? typeof value : JSON.stringify(value) ?? String(value);
  } catch {
    return 'a hostile object';
  }
}

test('name fuzzing on every entry point: only typed errors, nothing leaks, nothing created outside', { skip: process.platform === 'win32' && 'fuzzes the Unix entry points (socket files, abstract names, FIFOs) and checks nothing is created outside its directory; Windows pipe names have no such files', timeout: 120_000 }, async (t) => {
  const dir = scratchDir(t);
  const cwd = process.cwd();
  process.chdir(dir); // relative names land in the scratch directory
  t.after(() => process.chdir(cwd));
  const outside = fs.readdirSync(cwd);
  await sleep(10);
  const warm = await ipc.bindDatagram();
  await warm.close();
  const baseline = openFds();
  const target = await ipc.bindDatagram(ipc.nsName(`fuzz-target-${process.pid}`));
  const entries: Record<string, (name: unknown) => unknown> = {
    nsName: (n) => ipc.nsName(n as string),
    fsName: (n) => ipc.fsName(n as string),
    toName: (n) => ipc.toName(n as string),
    listen: (n) => ipc.listen(n as string),
    connect: (n) => ipc.connect(n as string),
    listenUnix: (n) => ipc.listenUnix(n as string, { type: ['stream', 'seqpacket'][rand(2)] as 'stream' }),
    connectUnix: (n) => ipc.connectUnix(n as string, { type: ['stream', 'seqpacket', 'datagram', 'bogus'][rand(4)] as 'stream' }),
    bindDatagram: (n) => ipc.bindDatagram(n as string),
    'bindDatagram connect': (n) => ipc.bindDatagram(null, { connect: n as string }),
    'UnixSocket.connect': (n) => target.connect(n as string),
    'send to': (n) => target.send('x', { to: n as string }),
    createFifo: (n) => ipc.createFifo(n as string),
    openFifoReader: (n) => ipc.openFifoReader(n as string),
    openFifoWriter: (n) => ipc.openFifoWriter(n as string, { wait: false }),
    serveRpc: (n) => ipc.serveRpc(n as string),
    connectRpc: (n) => ipc.connectRpc(n as string),
  };
  const untyped: string[] = [];
  const outcomes: Record<string, { ok: number; failed: number }> = {};
  const ROUNDS = 120;
  for (const [entry, call] of Object.entries(entries)) {
    const tally = (outcomes[entry] = { ok: 0, failed: 0 });
    for (let i = 0; i < ROUNDS; i++) {
      const name = randomName(dir);
      let result: unknown;
      try {
        result = await call(name);
        tally.ok++;
      } catch (error) {
        tally.failed++;
        if (!typed(error)) untyped.push(`${entry}(${describe(name)}): ${String(error)}`);
        continue;
      }
      // Close whatever opened.
      const things = Array.isArray(result) ? result : [result];
      for (const thing of things as Array<Record<string, unknown> | null | undefined>) {
        if (!thing || typeof thing !== 'object') continue;
        if (typeof thing.close === 'function' && !('destroy' in thing && typeof (thing as { write?: unknown }).write === 'function')) await (thing.close as () => Promise<void>)();
        else if (typeof thing.destroy === 'function') (thing.destroy as () => void)();
      }
    }
  }
  await target.close();
  const back = await fdsBack(baseline);
  figure(`name fuzzing: ${Object.keys(entries).length} entry points x ${ROUNDS} names, ${untyped.length} untyped failures, fds back in ${back.ms} ms; ${Object.entries(outcomes).map(([e, o]) => `${e} ${o.ok}/${o.failed}`).join(', ')}`);
  assert.deepEqual(untyped.slice(0, 10), []);
  assert.equal(back.fds, baseline);
  assert.deepEqual(fs.readdirSync(cwd), outside, 'nothing was created outside the scratch directory');
});
