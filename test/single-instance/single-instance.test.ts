// Single-instance applications across real processes: of 8 started at once exactly one is the
// primary and it gets the other 7 instances; a SIGKILLed primary is replaced by the next starter;
// a primary that is alive but busy is not; another user can neither take the name over, nor
// inject an instance, nor receive one by squatting the name; hostile same-user peers are bounded.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { type InterprocessError, type PrimaryInstance, type SecondaryInstance, connect, singleInstance } from 'interprocess';
import { instanceName } from '#internal/single-instance/name.js';
import { singleInstanceOn } from '#internal/single-instance/single-instance.js';
import { type Fixture, openFds, readAll, spawnFixture, uniqueName, wine } from '../helpers.js';

const windows = process.platform === 'win32';
const linuxOnly = process.platform !== 'linux' && 'abstract names and peer credentials of another user: Linux';
const firstInstanceNotEnforced = wine && 'Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE: two processes that listen on one pipe name at once both succeed there, so two can become primary (Windows refuses the second with ERROR_ACCESS_DENIED)';
const hasSetpriv = (() => {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const asRootAgainstNobody = linuxOnly || (process.getuid?.() !== 0 ? 'needs root to start a fixture as nobody' : !hasSetpriv ? 'needs setpriv' : false);
const NOBODY = 65534;

interface Result {
  primary: boolean;
  pid: number;
  reply?: { by: number; first: string | null };
  primaryPid?: number | null;
  code?: string;
  message?: string;
}
interface Arrived {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  data: { tag: string | null };
  pid: number | null;
}

/** The styles of name to test: the platform's own, and on Linux also the socket-file one of macOS and the BSDs. */
const styles: Array<{ style: 'ns' | 'dir'; skip: string | false }> = [
  { style: 'ns', skip: false },
  { style: 'dir', skip: windows && 'socket files in a private directory: macOS and the BSDs (tested on Linux too)' },
];

/**
 * Starts `count` processes of `id`, each in its own working directory, ready to go. Their
 * directories are removed after they exit (Windows keeps a process's working directory busy).
 */
async function starters(t: TestContext, id: string, style: string, mode: string, count: number, env: NodeJS.ProcessEnv = {}, runtime?: string): Promise<Array<{ fixture: Fixture; cwd: string; tag: string }>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipc-single-'));
  runtime ??= path.join(dir, 'run');
  fs.mkdirSync(runtime, { mode: 0o700, recursive: true });
  const all: Array<{ fixture: Fixture; cwd: string; tag: string }> = [];
  t.after(async () => {
    for (const { fixture } of all) fixture.child.kill('SIGKILL');
    await Promise.all(all.map(({ fixture }) => fixture.exited));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < count; i++) {
    const cwd = fs.realpathSync(fs.mkdtempSync(path.join(dir, `cwd${i}-`)));
    const tag = `tag-${i}`;
    const fixture = spawnFixture(t, 'single-instance', [id, style, mode, `arg-${i}`, `--n=${i}`], { ...process.env, XDG_RUNTIME_DIR: runtime, SINGLE_TAG: tag, ...env }, { cwd });
    all.push({ fixture, cwd, tag });
  }
  await Promise.all(all.map(({ fixture }) => fixture.next('ready')));
  return all;
}

for (const { style, skip } of styles) {
  test(`${style}: of 8 processes started at once exactly one is the primary, and it gets the 7 others' argv, cwd, env and data`, { skip: skip || firstInstanceNotEnforced, timeout: 90_000 }, async (t) => {
    const id = uniqueName('race');
    const all = await starters(t, id, style, 'normal', 8);
    for (const { fixture } of all) fixture.send({ type: 'go' });
    const results = await Promise.all(all.map(({ fixture }) => fixture.next<Result>('result')));
    const primaries = results.filter((r) => r.primary);
    assert.equal(primaries.length, 1, `exactly one primary: ${JSON.stringify(results)}`);
    const primaryIndex = results.findIndex((r) => r.primary);
    const primary = all[primaryIndex]!.fixture;
    const arrived = await Promise.all(results.filter((r) => !r.primary).map(() => primary.next<Arrived>('instance')));
    assert.equal(arrived.length, 7);
    for (const [i, { fixture, cwd, tag }] of all.entries()) {
      if (i === primaryIndex) continue;
      const result = results[i]!;
      assert.equal(result.code, undefined, `process ${i} failed: ${result.message}`);
      assert.deepEqual(result.reply, { by: primaries[0]!.pid, first: `arg-${i}` }, 'its own answer');
      assert.equal(result.primaryPid, primaries[0]!.pid, "the primary's pid, from the kernel");
      const mine = arrived.filter((a) => a.pid === fixture.child.pid);
      assert.equal(mine.length, 1, `process ${i}'s instance arrived once`);
      assert.deepEqual(mine[0], { type: 'instance', argv: [`arg-${i}`, `--n=${i}`], cwd, env: { SINGLE_TAG: tag }, data: { tag }, pid: fixture.child.pid });
    }
  });

  test(`${style}: a SIGKILLed primary is replaced by the next process to start, which gets the instances after it`, { skip, timeout: 60_000 }, async (t) => {
    const id = uniqueName('killed');
    const runtime = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ipc-single-')), 'run');
    t.after(() => fs.rmSync(path.dirname(runtime), { recursive: true, force: true }));
    const [first, second, third] = await starters(t, id, style, 'normal', 3, {}, runtime);
    first!.fixture.send({ type: 'go' });
    assert.equal((await first!.fixture.next<Result>('result')).primary, true);
    first!.fixture.child.kill('SIGKILL');
    await first!.fixture.exited;
    const socketFile = path.join(runtime, 'interprocess', 'single', id);
    if (style === 'dir') assert.equal(fs.lstatSync(socketFile).isSocket(), true, 'the dead primary left its socket file');
    second!.fixture.send({ type: 'go' });
    const replaced = await second!.fixture.next<Result>('result');
    assert.equal(replaced.primary, true, `the next starter is the primary: ${JSON.stringify(replaced)}`);
    third!.fixture.send({ type: 'go' });
    const handed = await third!.fixture.next<Result>('result');
    assert.deepEqual(handed.reply, { by: replaced.pid, first: 'arg-2' });
    assert.equal((await second!.fixture.next<Arrived>('instance')).pid, third!.fixture.child.pid);
  });
}

test('with a primary running, 7 processes started at once all hand over to it (also under Wine: they connect before they listen)', { timeout: 90_000 }, async (t) => {
  const id = uniqueName('after');
  const [primary, ...others] = await starters(t, id, 'ns', 'normal', 8);
  primary!.fixture.send({ type: 'go' });
  const first = await primary!.fixture.next<Result>('result');
  assert.equal(first.primary, true);
  for (const { fixture } of others) fixture.send({ type: 'go' });
  const results = await Promise.all(others.map(({ fixture }) => fixture.next<Result>('result')));
  for (const [i, result] of results.entries()) {
    assert.equal(result.primary, false, JSON.stringify(result));
    assert.deepEqual(result.reply, { by: first.pid, first: `arg-${i + 1}` });
  }
  const arrived = await Promise.all(others.map(() => primary!.fixture.next<Arrived>('instance')));
  assert.deepEqual(arrived.map((a) => a.pid).sort(), others.map(({ fixture }) => fixture.child.pid).sort());
});

test('a primary that is alive but busy is not taken over: later processes fail with ETIMEDOUT and none becomes primary', { timeout: 60_000 }, async (t) => {
  const id = uniqueName('busy');
  const [busy, late, later] = await starters(t, id, 'ns', 'busy', 3, { SINGLE_TIMEOUT: '1500' });
  busy!.fixture.send({ type: 'go' });
  assert.equal((await busy!.fixture.next<Result>('result')).primary, true);
  late!.fixture.send({ type: 'go' });
  later!.fixture.send({ type: 'go' });
  for (const { fixture } of [late!, later!]) {
    const result = await fixture.next<Result>('result');
    assert.equal(result.primary, false);
    assert.equal(result.code, 'ETIMEDOUT', JSON.stringify(result));
    assert.match(result.message!, /alive but busy/);
  }
});

test("the primary's reply, a failed reply, and answers from iteration, in one process", { timeout: 30_000 }, async () => {
  const id = uniqueName('reply');
  const before = openFds();
  const app = (await singleInstance<{ n: number }, string>(id)) as PrimaryInstance<{ n: number }, string>;
  assert.equal(app.primary, true);
  app.once('second-instance', (instance) => {
    assert.deepEqual(instance.data, { n: 1 });
    instance.reply(new Promise((resolve) => setTimeout(() => resolve(`later ${instance.argv.join(' ')}`), 50)));
    assert.throws(() => instance.reply('twice'), { code: 'ERR_INVALID_STATE' });
  });
  const first = (await singleInstance<{ n: number }, string>(id, { argv: ['a', 'b'], data: { n: 1 } })) as SecondaryInstance<string>;
  assert.deepEqual(first, { primary: false, reply: 'later a b', pid: process.pid });

  app.once('second-instance', (instance) => instance.reply(Promise.reject(Object.assign(new Error('no such file'), { code: 'ENOENT' }))));
  await assert.rejects(singleInstance(id), (error: InterprocessError) => error.code === 'ENOENT' && /no such file/.test(error.message));

  app.once('second-instance', () => {}); // answered with undefined when the listener returns
  assert.deepEqual(await singleInstance(id), { primary: false, reply: undefined, pid: process.pid });

  // No listener: the instances wait for the loop; one the loop did not answer is answered with
  // undefined when the loop asks for the next one.
  const handed = [singleInstance(id, { argv: ['x'] }), singleInstance(id, { argv: ['y'] })];
  const seen: string[] = [];
  for await (const instance of app.iterator({ closeOnReturn: false })) {
    seen.push(instance.argv[0]!);
    if (instance.argv[0] === 'x') continue; // not answered: answered with undefined next
    instance.reply('for y');
    if (seen.length === 2) break;
  }
  const answers = (await Promise.all(handed)) as SecondaryInstance[];
  assert.deepEqual(answers.map((a) => a.reply).sort(), [undefined, 'for y'].sort());
  assert.equal(app.listening, true);
  await app.close();
  assert.equal(app.listening, false);
  // Closed: the next process is the primary.
  const next = await singleInstance(id);
  assert.equal(next.primary, true);
  await (next as PrimaryInstance).close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(openFds() <= before, `no descriptor left open: ${openFds()} now, ${before} before`);
});

test('a same-user peer that announces a 1 GiB instance is cut off at the header, and one that stays silent after the timeout', { timeout: 30_000 }, async (t) => {
  const id = uniqueName('hostile');
  const app = (await singleInstance(id, { timeout: 300 })) as PrimaryInstance;
  t.after(() => app.close());
  let arrived = 0;
  app.on('second-instance', () => arrived++);
  const name = instanceName(id);

  const big = await connect(name);
  big.on('error', () => {});
  const header = Buffer.alloc(4);
  header.writeUInt32BE(0x40000000); // 1 GiB
  let written = 0;
  const chunk = Buffer.alloc(1024 * 1024, 0x20);
  const cut = new Promise<void>((resolve) => big.once('close', () => resolve()));
  big.write(header);
  // Keep writing until the primary cuts us off: it must, long before 1 GiB.
  const writer = (async () => {
    while (!big.destroyed && written < 1024 * 1024 * 1024) {
      if (!big.write(chunk)) await new Promise((resolve) => { big.once('drain', resolve); big.once('close', resolve); });
      written += chunk.length;
    }
  })();
  await cut;
  await writer;
  assert.ok(written < 64 * 1024 * 1024, `cut off after ${written} bytes`);

  const silent = await connect(name);
  silent.on('error', () => {});
  const started = Date.now();
  await new Promise((resolve) => silent.once('close', resolve));
  assert.ok(Date.now() - started < 10_000, 'the silent peer was closed');
  assert.equal(arrived, 0);
  // The primary still serves.
  assert.equal(((await singleInstance(id, { argv: ['ok'] })) as SecondaryInstance).primary, false);
  assert.equal(arrived, 1);
});

test('an unref()ed primary lets its process exit, and the name is free again after', { timeout: 30_000 }, async (t) => {
  const id = uniqueName('unref');
  const [first, second] = await starters(t, id, 'ns', 'unref', 2);
  first!.fixture.send({ type: 'go' });
  assert.equal((await first!.fixture.next<Result>('result')).primary, true);
  assert.deepEqual(await first!.fixture.exited, { code: 0, signal: null });
  second!.fixture.send({ type: 'go' });
  assert.equal((await second!.fixture.next<Result>('result')).primary, true);
});

test('signal: a waiting secondary stops with ABORT_ERR; an aborted primary closes', { timeout: 30_000 }, async () => {
  const id = uniqueName('abort');
  const controller = new AbortController();
  const app = (await singleInstance(id, { signal: controller.signal })) as PrimaryInstance;
  app.on('second-instance', (instance) => instance.reply(new Promise(() => {}))); // never answers
  await assert.rejects(singleInstance(id, { signal: AbortSignal.timeout(300) }), { code: 'ABORT_ERR' });
  const closed = new Promise((resolve) => app.once('close', () => resolve('closed')));
  controller.abort();
  assert.equal(await closed, 'closed');
  assert.equal(app.listening, false);
  const next = (await singleInstance(id)) as PrimaryInstance;
  assert.equal(next.primary, true);
  await next.close();
});

test('bad arguments are refused with typed errors', async () => {
  await assert.rejects(singleInstance(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(singleInstance('../etc'), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(singleInstance(''), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(singleInstance('ok', { argv: [1] as unknown as string[] }), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(singleInstance('ok', { env: 'PATH' as unknown as string[] }), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(singleInstance('ok', { timeout: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  await assert.rejects(singleInstance('ok', { maxMessageSize: 100, data: 'x'.repeat(200) }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(singleInstance('ok', { data: 1n }), { code: 'ERR_INVALID_ARG_VALUE' });
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  await assert.rejects(singleInstance('ok', { data: cycle }), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(singleInstance('ok', { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
});

test('a failed reply: the primary rejects and the secondary gets its code', { timeout: 30_000 }, async (t) => {
  const id = uniqueName('fail');
  const [primary, secondary] = await starters(t, id, 'ns', 'fail', 2);
  primary!.fixture.send({ type: 'go' });
  assert.equal((await primary!.fixture.next<Result>('result')).primary, true);
  secondary!.fixture.send({ type: 'go' });
  const result = await secondary!.fixture.next<Result>('result');
  assert.equal(result.code, 'EXAMPLE');
  assert.match(result.message!, /the primary refuses/);
});

test('another user (nobody) cannot inject an instance into the primary, nor bind its name', { skip: asRootAgainstNobody, timeout: 30_000 }, async (t) => {
  const id = uniqueName('inject');
  const app = (await singleInstance(id)) as PrimaryInstance;
  t.after(() => app.close());
  let arrived = 0;
  app.on('second-instance', () => arrived++);
  const refused = new Promise<{ uid: number | null } | null>((resolve) => app.once('refused', resolve));
  const uid = String(process.getuid!());

  const injector = spawnFixture(t, 'single-instance-intruder', ['inject', id, uid], process.env, { uid: NOBODY, gid: NOBODY });
  const injected = await injector.next<{ uid: number; connected: boolean; answered?: boolean }>('result');
  assert.equal(injected.uid, NOBODY);
  assert.equal(injected.answered, false, `no answer reached the intruder: ${JSON.stringify(injected)}`);
  assert.equal((await refused)?.uid, NOBODY);
  assert.equal(arrived, 0, 'nothing of it reached the primary');

  const binder = spawnFixture(t, 'single-instance-intruder', ['bind', id, uid], process.env, { uid: NOBODY, gid: NOBODY });
  assert.deepEqual(await binder.next('result'), { type: 'result', uid: NOBODY, bound: false, error: 'EADDRINUSE' });
  // And a process of this user still hands over.
  assert.equal(((await singleInstance(id)) as SecondaryInstance).pid, process.pid);
  assert.equal(arrived, 1);
});

test("another user (nobody) that squats this user's name first gets nothing: the starter fails with EACCES", { skip: asRootAgainstNobody, timeout: 30_000 }, async (t) => {
  const id = uniqueName('squat');
  const squatter = spawnFixture(t, 'single-instance-intruder', ['squat', id, String(process.getuid!())], process.env, { uid: NOBODY, gid: NOBODY });
  await squatter.next('listening');
  let received = 0;
  void squatter.next<{ bytes: number }>('received').then((m) => (received = m.bytes), () => {});
  await assert.rejects(singleInstance(id, { argv: ['--token=secret'] }), (error: InterprocessError) => {
    assert.equal(error.code, 'EACCES');
    assert.match(error.message, new RegExp(`held by uid ${NOBODY}`));
    return true;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(received, 0, 'not a byte of the instance reached the squatter');
});

test('the name is per user: the uid is part of the Linux abstract name', { skip: linuxOnly }, () => {
  assert.equal(String(instanceName('my-app', 'linux', 1000)), '@interprocess-single-1000-my-app');
  assert.notEqual(String(instanceName('my-app', 'linux', 1000)), String(instanceName('my-app', 'linux', 1001)));
  assert.match(String(instanceName('my-app', 'darwin')), /\/single\/my-app$/);
  assert.ok(singleInstanceOn);
});

/** One frame of the channel's wire (a 4-byte big-endian length, then the body). */
function frame(body: string | Buffer): Buffer {
  const bytes = Buffer.from(body);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(bytes.length);
  return Buffer.concat([header, bytes]);
}

test('same-user peers that trickle an instance a byte at a time, send garbage JSON or the wrong shape: each closed within bounds, nothing delivered, the primary serves on', { timeout: 30_000 * (wine ? 4 : 1) }, async (t) => {
  const id = uniqueName('trickle');
  const app = (await singleInstance(id, { timeout: 300 })) as PrimaryInstance;
  t.after(() => app.close());
  let arrived = 0;
  app.on('second-instance', () => arrived++);
  const name = instanceName(id);
  const before = openFds();

  // A byte every 20 ms: the instance would take seconds, but the primary's timeout counts from the
  // connection, not from the last byte.
  const trickler = await connect(name);
  trickler.on('error', () => {});
  const bytes = frame(JSON.stringify({ v: 1, argv: ['x'.repeat(200)], cwd: '/', env: {} }));
  const started = Date.now();
  let sent = 0;
  const closed = new Promise<void>((resolve) => trickler.once('close', () => resolve()));
  while (!trickler.destroyed && sent < bytes.length) {
    trickler.write(bytes.subarray(sent, sent + 1));
    sent++;
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 20)), closed]);
  }
  assert.ok(sent < bytes.length, `the trickled instance was read whole (${sent} bytes) instead of cut off`);
  await closed;
  assert.ok(Date.now() - started < 5_000, `cut off after ${Date.now() - started} ms`);

  // Garbage where JSON should be: the connection is closed, nothing reaches the handler.
  const garbage = await connect(name);
  garbage.on('error', () => {});
  const garbageClosed = new Promise<void>((resolve) => garbage.once('close', () => resolve()));
  garbage.write(frame('{"v":1,"argv":[not json'));
  await garbageClosed;

  // Valid JSON of the wrong shape: answered with ERR_INTERPROCESS_DECODE, then closed.
  for (const wrong of [{ v: 1, argv: 'x', cwd: '/', env: {} }, { v: 2, argv: [], cwd: '/', env: {} }, { v: 1, argv: [], cwd: '/', env: { A: 1 } }, [1, 2], 'text']) {
    const peer = await connect(name);
    peer.on('error', () => {});
    const answer = readAll(peer);
    peer.write(frame(JSON.stringify(wrong)));
    const reply = await answer;
    assert.match(reply.subarray(4).toString(), /ERR_INTERPROCESS_DECODE/, `the answer to ${JSON.stringify(wrong)}`);
  }

  assert.equal(arrived, 0);
  assert.equal(((await singleInstance(id, { argv: ['ok'] })) as SecondaryInstance).primary, false);
  assert.equal(arrived, 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(openFds() <= before, `no descriptor left open: ${openFds()} now, ${before} before`);
});

test('a same-user peer that sends its instance and never reads a large reply is closed after the timeout', { skip: wine && "Wine's named pipes can take the whole 900 KB answer into their buffer (one CI run in two), so a peer that reads nothing need not hold the primary back there", timeout: 30_000 }, async (t) => {
  const id = uniqueName('noread');
  const app = (await singleInstance(id, { timeout: 300 })) as PrimaryInstance;
  t.after(() => app.close());
  app.on('second-instance', (instance) => instance.reply('r'.repeat(900 * 1024)));
  const name = instanceName(id);
  const before = openFds();
  const peer = await connect(name);
  peer.on('error', () => {});
  peer.pause(); // reads nothing for now
  const reply = JSON.stringify({ reply: 'r'.repeat(900 * 1024) });
  peer.write(frame(JSON.stringify({ v: 1, argv: [], cwd: '/', env: {} })));
  // Five times the timeout without reading, then read what is left: a primary that cut the
  // connection off left only what the kernel had queued, not the whole answer.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const all = readAll(peer);
  peer.resume();
  const got = await all;
  assert.ok(got.length < 4 + Buffer.byteLength(reply), `the whole answer (${got.length} bytes) waited for a peer that read nothing`);
  peer.destroy();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(openFds() <= before, `no descriptor left open: ${openFds()} now, ${before} before`);
});

test('a secondary SIGKILLed while the primary prepares its answer: the primary answers into nothing, serves on, and leaks nothing', { skip: windows && 'SIGKILL and /proc descriptor counts: Unix', timeout: 30_000 }, async (t) => {
  const id = uniqueName('killed');
  const app = (await singleInstance(id)) as PrimaryInstance;
  t.after(() => app.close());
  const before = openFds();
  let release!: () => void;
  const held = new Promise<string>((resolve) => (release = () => resolve('late')));
  const arrived = new Promise<void>((resolve) => {
    app.once('second-instance', (instance) => {
      instance.reply(held);
      resolve();
    });
  });
  const victim = spawnFixture(t, 'single-instance-intruder', ['inject', id, String(process.getuid?.() ?? 0)]);
  await arrived;
  victim.child.kill('SIGKILL');
  await victim.exited;
  release();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(app.listening, true);
  let next = 0;
  app.on('second-instance', () => next++);
  assert.equal(((await singleInstance(id)) as SecondaryInstance).primary, false);
  assert.equal(next, 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(openFds() <= before, `no descriptor left open: ${openFds()} now, ${before} before`);
});
