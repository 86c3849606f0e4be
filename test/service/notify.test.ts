// sd_notify: what our sender puts in the datagram, read by receivers as the service manager reads
// it (SO_PASSCRED: the kernel's pid of the sender), one of ours and one in Python; and the same
// datagram as systemd-notify's. Descriptors stored with FDSTORE arrive and are usable.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type UnixMessage, type UnixSocket, bindDatagram, notifyReady, notifyReloading, notifyStatus, notifyStopping, nsName, sdNotify, startWatchdog, storeFds, watchdogTimeout } from 'interprocess';
import { exitOf, openFds, python, readAll, scratchDir, uniqueName } from '../helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const skip = process.platform !== 'linux' && (process.platform === 'win32' ? 'Unix-only (test/service/windows.test.ts checks Windows)' : 'the receivers use SO_PASSCRED (Linux)');

/** A notify socket of ours, as the manager's: credentials with every datagram. */
async function receiver(t: import('node:test').TestContext): Promise<{ socket: UnixSocket; address: string }> {
  const name = uniqueName('notify');
  const socket = await bindDatagram(nsName(name), { passCredentials: true, allow: 'any' });
  t.after(() => socket.destroy());
  return { socket, address: `@${name}` };
}

/** The sender fixture with `steps`, NOTIFY_SOCKET and the rest of `env`; LISTEN-style pid variables set to its own pid by sh. */
function sender(t: import('node:test').TestContext, steps: string[], env: Record<string, string>): ChildProcess & { lines: Array<Record<string, any>>; line(step: string): Promise<Record<string, any>> } {
  const child = spawn('sh', ['-c', 'WATCHDOG_PID=${WATCHDOG_PID_OVERRIDE:-$$} exec "$0" "$@"', process.execPath, path.join(here, '..', 'fixtures', 'notify-sender.js'), ...steps], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  t.after(() => child.kill('SIGKILL'));
  const lines: Array<Record<string, any>> = [];
  const waiting: Array<[string, (m: Record<string, any>) => void]> = [];
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const message = JSON.parse(buffered.slice(0, nl)) as Record<string, any>;
      buffered = buffered.slice(nl + 1);
      lines.push(message);
      const i = waiting.findIndex(([step]) => step === message.step);
      if (i >= 0) waiting.splice(i, 1)[0]![1](message);
    }
  });
  return Object.assign(child, {
    lines,
    line: (step: string) => {
      const seen = lines.find((m) => m.step === step);
      return seen ? Promise.resolve(seen) : new Promise<Record<string, any>>((resolve) => waiting.push([step, resolve]));
    },
  });
}

describe('our notify receiver (SO_PASSCRED, as the manager)', { skip }, () => {
  test('READY=1 with STATUS, RELOADING=1 with MONOTONIC_USEC, STOPPING=1, STATUS: one datagram each, from the service\'s pid', { timeout: 60_000 }, async (t) => {
    const { socket, address } = await receiver(t);
    const child = sender(t, ['ready', 'reloading', 'stopping', 'status'], { NOTIFY_SOCKET: address });
    const got: UnixMessage[] = [];
    for await (const message of socket.iterator({ closeOnReturn: false })) {
      got.push(message);
      if (got.length === 4) break;
    }
    assert.equal(await exitOf(child), 0);
    assert.deepEqual(child.lines.map((l) => l.sent), [true, true, true, true]);
    for (const message of got) assert.equal(message.credentials?.pid, child.pid, 'the kernel says the service itself sent it');
    assert.equal(String(got[0]!.data), 'READY=1\nSTATUS=Serving');
    const reload = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(String(got[1]!.data));
    assert.ok(reload, String(got[1]!.data));
    const { before, after } = child.lines[1]!;
    assert.ok(BigInt(before) <= BigInt(reload[1]!) && BigInt(reload[1]!) <= BigInt(after), 'MONOTONIC_USEC is CLOCK_MONOTONIC at the time of sending');
    // The manager compares it with its own CLOCK_MONOTONIC: the same clock in every process.
    const now = process.hrtime.bigint() / 1000n;
    assert.ok(BigInt(reload[1]!) <= now);
    assert.equal(String(got[2]!.data), 'STOPPING=1');
    assert.equal(String(got[3]!.data), 'STATUS=half way');
  });

  test('FDSTORE=1 with FDNAME: the descriptor arrives and reads what the service wrote', { timeout: 60_000 }, async (t) => {
    const { socket, address } = await receiver(t);
    const child = sender(t, ['store'], { NOTIFY_SOCKET: address });
    const message = (await socket.receive())!;
    assert.equal(String(message.data), 'FDSTORE=1\nFDNAME=kept-pipe');
    assert.equal(message.credentials?.pid, child.pid);
    assert.equal(message.fds.length, 1);
    assert.equal(message.fds[0]!.kind, 'fifo');
    assert.equal(await exitOf(child), 0);
    const stored = message.fds[0]!.toNetSocket({ writable: false });
    assert.equal(String(await readAll(stored)), 'stored bytes');
  });

  test('the watchdog pings at half of WATCHDOG_USEC, only for the WATCHDOG_PID it names, and stops on close()', { timeout: 60_000 }, async (t) => {
    const { socket, address } = await receiver(t);
    const child = sender(t, ['watchdog'], { NOTIFY_SOCKET: address, WATCHDOG_USEC: '400000' });
    assert.equal((await child.line('watchdog')).interval, 200);
    for (let i = 0; i < 3; i++) {
      const message = (await socket.receive())!;
      assert.equal(String(message.data), 'WATCHDOG=1');
      assert.equal(message.credentials?.pid, child.pid);
    }
    child.stdin!.write('stop\n');
    await child.line('stopped');
    assert.equal(await exitOf(child), 0, 'a closed watchdog holds nothing open');

    // For another process (WATCHDOG_PID of our own pid): nothing to ping; the service exits at once.
    const other = sender(t, ['watchdog'], { NOTIFY_SOCKET: address, WATCHDOG_USEC: '400000', WATCHDOG_PID_OVERRIDE: String(process.pid) });
    assert.equal((await other.line('watchdog')).interval, null);
    other.stdin!.end();
    assert.equal(await exitOf(other), 0);
    assert.equal(other.lines.filter((l) => l.step === 'ping').length, 0);
  });
});

describe('a Python receiver and systemd-notify', { skip }, () => {
  const receiverPy = `
import json, socket, struct, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + sys.argv[1]); s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1); s.settimeout(30)
print('ready', flush=True)
for _ in range(int(sys.argv[2])):
    data, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(4 * 8))
    pid = None; text = None; fds = []
    for level, kind, d in anc:
        if kind == socket.SCM_CREDENTIALS: pid = struct.unpack('iii', d)[0]
        if kind == socket.SCM_RIGHTS: fds += list(struct.unpack('%di' % (len(d) // 4), d[:len(d) // 4 * 4]))
    for fd in fds:
        text = os.read(fd, 100).decode(); os.close(fd)
    print(json.dumps({'data': data.decode(), 'pid': pid, 'fds': len(fds), 'read': text, 'truncated': bool(flags & socket.MSG_CTRUNC)}), flush=True)
`;

  async function pythonReceiver(t: import('node:test').TestContext, count: number) {
    const name = uniqueName('notify-py');
    const child = python(t, receiverPy, [name, String(count)]);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    while (!out.includes('ready')) await once(child.stdout!, 'data');
    return { address: `@${name}`, messages: async () => (await child.output).trim().split('\n').slice(1).map((l) => JSON.parse(l)) };
  }

  test('Python reads what we send: each message, our pid, an FDSTORE descriptor it can read', { timeout: 60_000 }, async (t) => {
    const { address, messages } = await pythonReceiver(t, 5);
    const saved = process.env.NOTIFY_SOCKET;
    process.env.NOTIFY_SOCKET = address;
    t.after(() => (saved === undefined ? delete process.env.NOTIFY_SOCKET : (process.env.NOTIFY_SOCKET = saved)));
    assert.equal(await notifyReady(), true);
    assert.equal(await notifyStatus('Ünïcode status'), true);
    assert.equal(await sdNotify({ MAINPID: process.pid, EXTEND_TIMEOUT_USEC: 5_000_000 }), true);
    const { pipe } = await import('interprocess');
    const { sender: end, receiver: stored } = pipe();
    end.end('from the store');
    const before = openFds();
    assert.equal(await storeFds([stored], { name: 'kept' }), true);
    assert.equal(openFds(), before, 'sending opened nothing that stays open');
    stored.destroy();
    assert.equal(await sdNotify('WATCHDOG=1', { unsetEnvironment: true }), true);
    assert.equal(process.env.NOTIFY_SOCKET, undefined, 'unsetEnvironment removes NOTIFY_SOCKET');
    assert.equal(await notifyStopping(), false, 'then it is a no-op');
    const got = await messages();
    assert.deepEqual(got.map((m) => m.data), ['READY=1', 'STATUS=Ünïcode status', `MAINPID=${process.pid}\nEXTEND_TIMEOUT_USEC=5000000`, 'FDSTORE=1\nFDNAME=kept', 'WATCHDOG=1']);
    for (const m of got) assert.equal(m.pid, process.pid);
    assert.equal(got[3].fds, 1);
    assert.equal(got[3].read, 'from the store');
  });

  test('systemd-notify --ready and notifyReady() send the same datagram', { timeout: 60_000 }, async (t) => {
    const { address, messages } = await pythonReceiver(t, 2);
    const tool = spawn('systemd-notify', ['--ready', '--no-block'], { stdio: 'inherit', env: { ...process.env, NOTIFY_SOCKET: address } });
    assert.equal(await exitOf(tool), 0);
    const ours = sender(t, ['ready-plain'], { NOTIFY_SOCKET: address });
    assert.equal(await exitOf(ours), 0);
    const [theirs, mine] = await messages();
    assert.equal(theirs.data, 'READY=1');
    assert.deepEqual({ ...mine, pid: theirs.pid }, theirs, 'byte for byte the same datagram, with no descriptors');
    assert.equal(mine.pid, ours.pid);
  });
});

describe('without a manager, and misconfigured', () => {
  const withSocket = async (value: string | undefined, run: () => Promise<void>) => {
    const saved = process.env.NOTIFY_SOCKET;
    if (value === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = value;
    try {
      await run();
    } finally {
      if (saved === undefined) delete process.env.NOTIFY_SOCKET;
      else process.env.NOTIFY_SOCKET = saved;
    }
  };

  test('NOTIFY_SOCKET unset: every call is a no-op resolving false (on every platform), bad arguments still fail', async () => {
    await withSocket(undefined, async () => {
      const before = openFds();
      assert.equal(await notifyReady({ status: 'x' }), false);
      assert.equal(await notifyReloading(), false);
      assert.equal(await notifyStopping(), false);
      assert.equal(await notifyStatus('x'), false);
      assert.equal(await sdNotify('READY=1'), false);
      assert.equal(await storeFds([0]), false);
      assert.equal(openFds(), before);
      await assert.rejects(sdNotify(''), { code: 'ERR_INVALID_ARG_VALUE' });
      await assert.rejects(sdNotify(42 as never), { code: 'ERR_INVALID_ARG_TYPE' });
      await assert.rejects(sdNotify({ 'BAD=KEY': 1 }), { code: 'ERR_INVALID_ARG_VALUE' });
      await assert.rejects(sdNotify({ STATUS: 'two\nlines' }), { code: 'ERR_INVALID_ARG_VALUE' });
      await assert.rejects(sdNotify({ READY: true as never }), { code: 'ERR_INVALID_ARG_TYPE' });
      await assert.rejects(sdNotify('X='.padEnd(4097, 'x')), { code: 'ERR_OUT_OF_RANGE' });
      await assert.rejects(notifyReady({ status: 'a\nb' }), { code: 'ERR_INVALID_ARG_VALUE' });
      await assert.rejects(notifyStatus(1 as never), { code: 'ERR_INVALID_ARG_TYPE' });
      await assert.rejects(storeFds([]), { code: 'ERR_INVALID_ARG_VALUE' });
      await assert.rejects(storeFds([0], { name: 'a:b' }), { code: 'ERR_INVALID_ARG_VALUE' });
      await assert.rejects(storeFds([0], { name: 'x'.repeat(256) }), { code: 'ERR_INVALID_ARG_VALUE' });
      await assert.rejects(storeFds(0 as never), { code: 'ERR_INVALID_ARG_TYPE' });
      await assert.rejects(sdNotify('READY=1', { signal: 'no' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
    });
  });

  test('a NOTIFY_SOCKET nothing listens on, a malformed one, an AF_VSOCK one: typed errors, nothing left open', { skip: process.platform === 'win32' && 'Windows: test/service/windows.test.ts' }, async (t) => {
    const dir = scratchDir(t);
    const before = openFds();
    await withSocket(path.join(dir, 'nobody-here.sock'), async () => {
      await assert.rejects(notifyReady(), (error: any) => {
        assert.equal(error.code, 'ENOENT');
        assert.match(error.message, /Cannot notify the service manager at NOTIFY_SOCKET=/);
        return true;
      });
    });
    await withSocket(`@${uniqueName('nobody')}`, async () => {
      await assert.rejects(notifyReady(), { code: 'ECONNREFUSED' });
    });
    await withSocket('relative/path', async () => {
      await assert.rejects(notifyReady(), { code: 'EINVAL', message: /neither an absolute path nor an '@' abstract name/ });
    });
    await withSocket('vsock:2:1234', async () => {
      await assert.rejects(notifyReady(), { code: 'ERR_INTERPROCESS_UNSUPPORTED' });
    });
    await withSocket('@x', async () => {
      await assert.rejects(sdNotify('READY=1', { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
    });
    assert.equal(openFds(), before);
  });

  test('a NOTIFY_SOCKET whose receiver never reads: EAGAIN once its queue stays full for 5 s, not a hang, nothing left open', { skip, timeout: 60_000 }, async (t) => {
    const name = uniqueName('stuck');
    const stuck = await bindDatagram(nsName(name), { allow: 'any' }); // never receive()d
    t.after(() => stuck.destroy());
    const before = openFds();
    await withSocket(`@${name}`, async () => {
      let sent = 0;
      const started = Date.now();
      const error = await (async () => {
        // Linux queues at most net.unix.max_dgram_qlen (10 by default) datagrams per receiver.
        for (; sent < 10_000; sent++) {
          try {
            await notifyStatus(`filling ${sent}`);
          } catch (error) {
            return error as { code?: string; message?: string };
          }
        }
        return null;
      })();
      assert.ok(error !== null, `${sent} notifications sent to a receiver that reads none, and none failed`);
      assert.equal(error.code, 'EAGAIN');
      assert.match(error.message!, /queue stayed full for 5000 ms/);
      assert.ok(Date.now() - started < 30_000, `failed after ${Date.now() - started} ms`);
    });
    assert.equal(openFds(), before);
  });

  test('watchdogTimeout() and startWatchdog() without a watchdog', () => {
    const saved = { usec: process.env.WATCHDOG_USEC, pid: process.env.WATCHDOG_PID };
    try {
      delete process.env.WATCHDOG_USEC;
      assert.equal(watchdogTimeout(), null);
      const dog = startWatchdog();
      assert.equal(dog.interval, null);
      void dog.close();
      assert.equal(dog.closed, true);
      process.env.WATCHDOG_USEC = '3000000';
      process.env.WATCHDOG_PID = String(process.pid);
      assert.equal(watchdogTimeout(), 3000);
      process.env.WATCHDOG_PID = '1';
      assert.equal(watchdogTimeout(), null);
      process.env.WATCHDOG_USEC = 'soon';
      assert.throws(() => watchdogTimeout(), { code: 'EINVAL' });
      assert.throws(() => startWatchdog(), { code: 'EINVAL' });
      assert.throws(() => startWatchdog(null as never), { code: 'ERR_INVALID_ARG_TYPE' });
    } finally {
      if (saved.usec === undefined) delete process.env.WATCHDOG_USEC;
      else process.env.WATCHDOG_USEC = saved.usec;
      if (saved.pid === undefined) delete process.env.WATCHDOG_PID;
      else process.env.WATCHDOG_PID = saved.pid;
    }
  });
});
