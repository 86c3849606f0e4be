// Signals across real processes: handlers, process groups, errors.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { onSignal, sendSignal, sendSignalToGroup, signals } from 'interprocess';
import { spawnFixture, exitOf, nodeForAnyUser } from '../helpers.js';

const windows = process.platform === 'win32';
const unixOnly = (what: string) => windows && `${what} (Windows' emulated signals are tested below)`;
const windowsOnly = !windows && 'Windows behaviour (Node emulates signals there)';

test('SIGUSR2 and SIGTERM reach a child\'s handlers; untrapped, SIGTERM terminates it', { skip: unixOnly('Windows has no SIGUSR2, and its SIGTERM terminates without running handlers') }, async (t) => {
  const child = spawnFixture(t, 'signal-child');
  const { pid } = await child.next<{ pid: number }>('ready');
  sendSignal(pid, 'SIGUSR2');
  assert.equal((await child.next<{ signal: string }>('signal')).signal, 'SIGUSR2');
  sendSignal(pid, 'SIGTERM');
  assert.equal((await child.next<{ signal: string }>('signal')).signal, 'SIGTERM');
  child.send({ type: 'untrap' });
  await child.next('untrapped');
  sendSignal(pid, 'SIGTERM');
  assert.deepEqual(await child.exited, { code: null, signal: 'SIGTERM' });
});

test('a signal to a process group reaches every process in it', { skip: unixOnly('Windows has no process groups') }, async (t) => {
  const leader = spawnFixture(t, 'signal-child', ['group'], process.env, { detached: true });
  const first = await leader.next<{ role: string; pid: number }>('ready');
  const second = await leader.next<{ role: string; pid: number }>('ready');
  assert.deepEqual([first.role, second.role].sort(), ['grandchild', 'group']);
  sendSignalToGroup(leader.child.pid!, 'SIGUSR2');
  const got = [await leader.next<{ role: string }>('signal'), await leader.next<{ role: string }>('signal')];
  assert.deepEqual(got.map((m) => m.role).sort(), ['grandchild', 'group']);
  sendSignalToGroup(leader.child.pid!, 'SIGKILL');
  await leader.exited;
});

test('bad names and pids are clear errors', async () => {
  if (windows) {
    // Windows knows no SIGUSR2, and `true` is no program there: the same checks, its way.
    assert.throws(() => sendSignal(process.pid, 'SIGUSR2'), { code: 'ERR_UNKNOWN_SIGNAL' });
  }
  assert.throws(() => sendSignal(process.pid, 'SIGNOPE' as never), { code: 'ERR_UNKNOWN_SIGNAL', message: /SIGTERM/ });
  assert.throws(() => sendSignal(process.pid, 15 as never), { code: 'ERR_INVALID_ARG_TYPE' });
  for (const pid of [0, -1, 1.5, Number.NaN, '1' as never]) {
    assert.throws(() => sendSignal(pid, 'SIGTERM'), { code: 'ERR_INVALID_ARG_VALUE' }, String(pid));
  }
  assert.throws(() => sendSignalToGroup(0, 'SIGTERM'), { code: 'ERR_INVALID_ARG_VALUE' });
  // A process that has exited (and been reaped) is gone: ESRCH. Under Wine an exited child's pid
  // can still be terminated while Node holds its handle, so there a pid no process has is used.
  let gone = 0x7ffffffc;
  if (!windows) {
    const child = spawn('true');
    await exitOf(child);
    gone = child.pid!;
  }
  assert.throws(() => sendSignal(gone, 'SIGTERM'), { code: 'ESRCH', message: /No such process/ });
});

/** Can any user run this file (every directory on its path searchable, the file executable)? */
test('no permission: EPERM when another user signals us', { skip: unixOnly('Windows has no uid to signal as') }, async (t) => {
  if (process.getuid!() !== 0) {
    // As a normal user, signalling init (pid 1) is the same refusal.
    assert.throws(() => sendSignal(1, 'SIGUSR2'), { code: 'EPERM' });
    return;
  }
  const trap = onSignal('SIGUSR2', () => assert.fail('the unprivileged child must not reach us'));
  t.after(trap);
  const fixture = fileURLToPath(new URL('../fixtures/kill-as.js', import.meta.url));
  const { stdout } = await promisify(execFile)(nodeForAnyUser(), [fixture, String(process.pid)], { uid: 65534, gid: 65534 });
  const result = JSON.parse(stdout) as { code: string; message: string };
  assert.equal(result.code, 'EPERM');
  assert.match(result.message, /may not signal/);
});

test('what can be caught, and why not', () => {
  const list = signals();
  const byName = new Map(list.map((s) => [s.name, s]));
  assert.equal(byName.get('SIGTERM')?.number, 15);
  assert.equal(byName.get('SIGKILL')?.canCatch, false);
  assert.match(byName.get('SIGKILL')!.reason!, /never lets a process catch it/);
  if (windows) {
    assert.equal(byName.get('SIGTERM')?.canCatch, false);
    assert.match(byName.get('SIGTERM')!.reason!, /Windows only delivers SIGINT, SIGBREAK, SIGHUP and SIGWINCH/);
    assert.deepEqual(list.filter((s) => s.canCatch).map((s) => s.name).sort(), ['SIGBREAK', 'SIGHUP', 'SIGINT', 'SIGWINCH']);
    assert.deepEqual(list.filter((s) => s.canSend).map((s) => s.name).sort(), ['SIGINT', 'SIGKILL', 'SIGQUIT', 'SIGTERM']);
    assert.match(byName.get('SIGHUP')!.reason!, /fails with ENOSYS/);
  } else {
    assert.equal(byName.get('SIGTERM')?.canCatch, true);
    assert.match(byName.get('SIGUSR1')!.reason!, /inspector/);
    assert.ok(list.every((s) => s.canSend));
  }
  assert.throws(() => onSignal('SIGKILL', () => {}), { code: 'ERR_INTERPROCESS_UNSUPPORTED' });
  // Windows' Node knows no SIGSTOP at all.
  assert.throws(() => onSignal('SIGSTOP', () => {}), { code: windows ? 'ERR_UNKNOWN_SIGNAL' : 'ERR_INTERPROCESS_UNSUPPORTED' });
  assert.throws(() => onSignal(windows ? 'SIGTERM' : 'SIGUSR1', () => {}), { code: 'ERR_INTERPROCESS_UNSUPPORTED' });
  assert.throws(() => onSignal('SIGTERM', 'nope' as never), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('a handler in this process, and its disposer', { skip: unixOnly('Windows cannot send a signal a process survives (SIGWINCH fails with ENOSYS there)') }, async () => {
  // SIGWINCH: harmless if it ever arrives unhandled (the test runner of Node 24+ uses SIGUSR2 here).
  const listenersBefore = process.listenerCount('SIGWINCH');
  const seen: string[] = [];
  {
    using _subscription = onSignal('SIGWINCH', (name) => seen.push(name));
    sendSignal(process.pid, 'SIGWINCH');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.deepEqual(seen, ['SIGWINCH']);
  assert.equal(process.listenerCount('SIGWINCH'), listenersBefore, 'disposed');
});

test('onSignal with an AbortSignal: aborting removes the handler; an aborted one installs nothing', { skip: unixOnly('Windows cannot send a signal a process survives (SIGWINCH fails with ENOSYS there)') }, async () => {
  const listenersBefore = process.listenerCount('SIGWINCH');
  const seen: string[] = [];
  const controller = new AbortController();
  const subscription = onSignal('SIGWINCH', (name) => seen.push(name), { signal: controller.signal });
  assert.equal(process.listenerCount('SIGWINCH'), listenersBefore + 1);
  sendSignal(process.pid, 'SIGWINCH');
  await new Promise((resolve) => setTimeout(resolve, 50));
  controller.abort();
  assert.equal(process.listenerCount('SIGWINCH'), listenersBefore, 'removed on abort');
  const stay = onSignal('SIGWINCH', () => {}); // holds the signal, so no default action meanwhile
  sendSignal(process.pid, 'SIGWINCH');
  await new Promise((resolve) => setTimeout(resolve, 50));
  stay();
  assert.deepEqual(seen, ['SIGWINCH'], 'nothing after the abort');
  subscription(); // disposing after the abort is harmless
  onSignal('SIGWINCH', () => assert.fail('never installed'), { signal: AbortSignal.abort() });
  assert.equal(process.listenerCount('SIGWINCH'), listenersBefore, 'an aborted signal installs nothing');
  assert.throws(() => onSignal('SIGWINCH', () => {}, { signal: 'no' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('worker threads cannot catch signals, and say so', async () => {
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(
    `import('interprocess').then(({ onSignal }) => { try { onSignal('SIGINT', () => {}); postMessage('no error'); } catch (e) { postMessage(e.code + ': ' + e.message); } }).catch((e) => postMessage(String(e)));
     const { parentPort } = require('node:worker_threads'); function postMessage(m) { parentPort.postMessage(m); }`,
    { eval: true },
  );
  const [message] = await once(worker, 'message');
  assert.match(message, /^ERR_INTERPROCESS_UNSUPPORTED: .*worker threads/);
  await worker.terminate();
});

test('on Windows, SIGINT, SIGTERM, SIGKILL and SIGQUIT end a process at once, no handler run; others fail with ENOSYS', { skip: windowsOnly, timeout: 60_000 }, async () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL', 'SIGQUIT'] as const) {
    // The child would exit with 7 if a handler ran; TerminateProcess makes it 1.
    const child = spawn(process.execPath, ['-e', "for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(7)); process.send('ready'); setInterval(() => {}, 1000)"], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    await once(child, 'message');
    sendSignal(child.pid!, signal);
    assert.equal(await exitOf(child), 1, signal);
  }
  const child = spawn(process.execPath, ['-e', "process.send('ready'); setInterval(() => {}, 1000)"], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  try {
    await once(child, 'message');
    for (const signal of ['SIGHUP', 'SIGWINCH', 'SIGBREAK'] as const) {
      assert.throws(() => sendSignal(child.pid!, signal), { code: 'ENOSYS', message: /can only send SIGINT, SIGTERM, SIGKILL and SIGQUIT/ }, signal);
    }
    assert.throws(() => sendSignalToGroup(child.pid!, 'SIGTERM'), { code: 'ERR_INTERPROCESS_UNSUPPORTED', message: /no process groups/ });
  } finally {
    child.kill('SIGKILL');
    await exitOf(child);
  }
});
