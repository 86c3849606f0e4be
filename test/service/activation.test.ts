// Socket activation with the real tool: systemd-socket-activate (Debian's systemd package) starts
// a Node service (test/fixtures/activated.ts) with a stream, a seqpacket and a datagram socket,
// each named with --fdname, and clients (ours and Python) talk to each. Then the edge cases of the
// environment, in children started with LISTEN_PID set to their own pid by `sh -c 'exec ...'`.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InterprocessError, LocalSocketListener, UnixListener, connect, listenFds, pipe, unixSocketPair } from 'interprocess';
import { closeFdQuietly } from '#internal/native/fds.js';
import { requireNative } from '#internal/native/addon.js';
import { exitOf, openFds, python, scratchDir, spawnFixture, uniqueName } from '../helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, '..', 'fixtures', 'activated.js');
const skip = process.platform === 'win32' ? 'socket activation is Unix-only (test/service/windows.test.ts checks Windows)' : process.platform !== 'linux' ? 'systemd-socket-activate is Linux-only' : false;

/** Lines of JSON a child writes on stdout, taken by type. */
function jsonLines(child: ChildProcess): (type: string) => Promise<Record<string, any>> {
  const seen: Array<Record<string, any>> = [];
  const waiting: Array<{ type: string; resolve: (m: Record<string, any>) => void }> = [];
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      const message = JSON.parse(line) as Record<string, any>;
      const i = waiting.findIndex((w) => w.type === message.type);
      if (i >= 0) waiting.splice(i, 1)[0]!.resolve(message);
      else seen.push(message);
    }
  });
  const exited = once(child, 'close');
  return (type) => {
    const i = seen.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0]!);
    return Promise.race([
      new Promise<Record<string, any>>((resolve) => waiting.push({ type, resolve })),
      exited.then(([code, signal]) => { throw new Error(`the service exited (${code ?? signal}) before '${type}'`); }),
    ]);
  };
}

describe('systemd-socket-activate starts a Node service', { skip }, () => {
  test('a stream, a seqpacket and a datagram socket, each named, each adopted and served', { timeout: 60_000 }, async (t) => {
    const dir = scratchDir(t);
    const web = path.join(dir, 'web.sock');
    const seq = path.join(dir, 'seq.sock');
    const dg = uniqueName('activated-dg'); // an abstract name
    // Each systemd-socket-activate passes the descriptors it was given on (LISTEN_FDS) and adds
    // its own; the last one names them all. Each waits for a first connection on descriptor 3,
    // which stays queued for the service.
    const child = spawn('systemd-socket-activate', [
      '-l', web, '--',
      'systemd-socket-activate', '--seqpacket', '-l', seq, '--',
      'systemd-socket-activate', '--datagram', '-l', `@${dg}`, '--fdname=web:seq:dg', '--',
      process.execPath, fixture,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => child.kill('SIGKILL'));
    let log = '';
    child.stderr!.on('data', (d) => (log += d));
    const next = jsonLines(child);
    // The tool binds the socket file before it says so on stderr: wait for it.
    while (!log.includes(`Listening on ${web}`)) await once(child.stderr!, 'data');
    const first = await connect(web, { wait: true, timeout: 20_000 }); // activates the chain
    t.after(() => first.destroy());

    const found = await next('fds');
    assert.equal(found.listenPid, String(found.pid), 'the tool sets LISTEN_PID to the service (it execs in place)');
    assert.deepEqual(found.fds.map((f: any) => [f.fd, f.name, f.kind, f.socketType, f.listening]), [
      [3, 'web', 'socket', 'stream', true],
      [4, 'seq', 'socket', 'seqpacket', true],
      [5, 'dg', 'socket', 'datagram', false],
    ]);
    assert.deepEqual(found.env, { LISTEN_PID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null }, 'the variables are removed, as sd_listen_fds(1) does');
    assert.deepEqual(found.cloexec, [true, true, true], 'each descriptor is made close-on-exec');
    assert.equal(found.again, 0, 'a second call finds nothing: the environment is gone');

    const wrong = await next('wrong');
    assert.deepEqual(wrong.wrong.map((w: any) => w.code), ['ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_VALUE']);
    assert.match(wrong.wrong[0].message, /descriptor 5\) is a Unix datagram socket, not a listening Unix stream or seqpacket socket: adopt it with unixSocketFromFd\(\)/);
    assert.match(wrong.wrong[1].message, /descriptor 4\) is a listening Unix seqpacket socket, not a listening Unix stream socket: adopt it with UnixListener\.fromFd\(\)/);
    assert.match(wrong.wrong[3].message, /is a listening Unix stream socket \(listening\), not a connected or datagram Unix socket|is a socket \(listening\)/);
    assert.equal(wrong.after, wrong.before, 'the failed adoptions opened nothing and closed nothing');

    const adopted = await next('adopted');
    assert.deepEqual(adopted.web, { fd: 3, name: web });
    assert.deepEqual(adopted.seq, { fd: 4, type: 'seqpacket', name: seq });
    assert.deepEqual(adopted.dg, { fd: 5, type: 'datagram' });
    await next('ready');

    // Our client (the connection that activated the service) and Python's, on each socket.
    first.write('hello');
    const [reply] = await once(first, 'data');
    assert.equal(String(reply), 'web:hello');
    const me = uniqueName('activated-client');
    const py = python(t, `
import socket, sys
web, seq, dg, me = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(web); s.sendall(b'py'); print(s.recv(100).decode()); s.close()
q = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); q.connect(seq)
for m in (b'one', b'two'):
    q.send(m); print(q.recv(100).decode())
d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); d.bind('\\0' + me); d.settimeout(20)
d.sendto(b'ping', '\\0' + dg); print(d.recv(100).decode())
`, [web, seq, dg, me]);
    assert.deepEqual((await py.output).trim().split('\n'), ['web:py', 'seq:one', 'seq:two', 'dg:ping']);
  });
});

/** Runs the listen-fds-report fixture in a child whose LISTEN_PID is its own pid (`sh -c 'exec'`), with `fds` as its descriptors 3, 4, ... */
async function activatedChild(t: import('node:test').TestContext, env: Record<string, string>, fds: number[] = []): Promise<any> {
  const child = spawn('sh', ['-c', 'LISTEN_PID=${PID_OVERRIDE:-$$} exec "$0" "$@"', process.execPath, path.join(here, '..', 'fixtures', 'listen-fds-report.js')], {
    stdio: ['ignore', 'pipe', 'inherit', ...fds],
    env: { ...process.env, ...env },
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const [exitCode] = await once(child, 'close'); // after stdout has ended: all its output is in
  assert.equal(exitCode, 0, out);
  return JSON.parse(out);
}

describe('listenFds() reads the environment as sd_listen_fds does', { skip: process.platform === 'win32' && 'Unix-only (test/service/windows.test.ts)' }, () => {
  test('for this process: every descriptor, named "unknown" without LISTEN_FDNAMES; a FIFO too', { timeout: 30_000 }, async (t) => {
    const [a, b] = unixSocketPair({ type: 'seqpacket' });
    t.after(() => {
      a.destroy();
      b.destroy();
    });
    const { sender, receiver } = pipe();
    t.after(() => {
      sender.destroy();
      receiver.destroy();
    });
    const result = await activatedChild(t, { LISTEN_FDS: '2' }, [a.fd, receiver.fd]);
    assert.deepEqual(result.fds, [[3, 'unknown', 'socket', 'seqpacket', false], [4, 'unknown', 'fifo', null, false]]);
    assert.deepEqual(result.env, [null, null, null]);
  });

  test('LISTEN_PID of another process: nothing, and the variables are still removed', { timeout: 30_000 }, async (t) => {
    const [a, b] = unixSocketPair({ type: 'datagram' });
    t.after(() => {
      a.destroy();
      b.destroy();
    });
    const result = await activatedChild(t, { LISTEN_FDS: '1', LISTEN_FDNAMES: 'x', PID_OVERRIDE: String(process.pid) }, [a.fd]);
    assert.deepEqual(result.fds, []);
    assert.deepEqual(result.env, [null, null, null]);
  });

  test('unsetEnvironment: false leaves the variables for a second reader', { timeout: 30_000 }, async (t) => {
    const [a, b] = unixSocketPair({ type: 'datagram' });
    t.after(() => {
      a.destroy();
      b.destroy();
    });
    const result = await activatedChild(t, { LISTEN_FDS: '1', LISTEN_FDNAMES: 'keep', OPTIONS: '{"unsetEnvironment":false}' }, [a.fd]);
    assert.deepEqual(result.fds, [[3, 'keep', 'socket', 'datagram', false]]);
    assert.equal(result.env[1], '1');
    assert.equal(result.env[2], 'keep');
  });

  test('malformed variables fail with EINVAL and are removed all the same', { timeout: 60_000 }, async (t) => {
    for (const [env, pattern] of [
      [{ PID_OVERRIDE: 'abc', LISTEN_FDS: '1' }, /LISTEN_PID is not a process id: 'abc'/],
      [{ LISTEN_FDS: '-1' }, /LISTEN_FDS is not a count of descriptors: '-1'/],
      [{ LISTEN_FDS: '2', LISTEN_FDNAMES: 'only-one' }, /LISTEN_FDNAMES names 1 descriptors \('only-one'\) but LISTEN_FDS says 2/],
    ] as const) {
      const result = await activatedChild(t, env as Record<string, string>);
      assert.equal(result.code, 'EINVAL', JSON.stringify(result));
      assert.match(result.message, pattern);
      assert.deepEqual(result.env, [null, null, null]);
    }
  });

  test('a descriptor LISTEN_FDS promises but that is not open: EBADF', { timeout: 30_000 }, async (t) => {
    const result = await activatedChild(t, { LISTEN_FDS: '2000' });
    assert.equal(result.code, 'EBADF', JSON.stringify(result));
    assert.match(result.message, /Socket activation \(LISTEN_FDS=2000\): descriptor \d+ cannot be examined/);
  });

  test('no LISTEN_PID: nothing', () => {
    const saved = process.env.LISTEN_PID;
    delete process.env.LISTEN_PID;
    try {
      assert.deepEqual(listenFds({ unsetEnvironment: false }), []);
    } finally {
      if (saved !== undefined) process.env.LISTEN_PID = saved;
    }
    assert.throws(() => listenFds(null as never), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => listenFds({ unsetEnvironment: 1 as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('adopting listening descriptors by number', { skip: process.platform === 'win32' && 'Unix-only (test/service/windows.test.ts)' }, () => {
  test('a wrong type fails typed, leaves the descriptor working and opens nothing', async (t) => {
    const [a, b] = unixSocketPair({ type: 'datagram' });
    t.after(() => {
      a.destroy();
      b.destroy();
    });
    const [c, d] = unixSocketPair({ type: 'stream' });
    t.after(() => {
      c.destroy();
      d.destroy();
    });
    const before = openFds();
    await assert.rejects(UnixListener.fromFd(a.fd), (error: any) => {
      assert.ok(error instanceof InterprocessError);
      assert.ok(error instanceof TypeError);
      assert.equal(error.code, 'ERR_INVALID_ARG_VALUE');
      assert.match(error.message, /is a Unix datagram socket, not a listening Unix stream or seqpacket socket: adopt it with unixSocketFromFd\(\)\. It is still open and still yours/);
      return true;
    });
    await assert.rejects(LocalSocketListener.fromFd(a.fd), { code: 'ERR_INVALID_ARG_VALUE', message: /is a Unix datagram socket, not a listening Unix stream socket/ });
    await assert.rejects(LocalSocketListener.fromFd(c.fd), { code: 'ERR_INVALID_ARG_VALUE', message: /is a connected Unix stream socket, not a listening Unix stream socket: adopt it with unixSocketFromFd\(\)/ });
    assert.equal(openFds(), before);
    await b.send('still mine');
    assert.equal(String((await a.receive())!.data), 'still mine');
  });

  test('bad arguments and closed descriptors are typed', async () => {
    for (const bad of [-1, 1.5, 2 ** 32 + 3]) {
      await assert.rejects(LocalSocketListener.fromFd(bad), { code: 'ERR_INVALID_ARG_VALUE' });
      await assert.rejects(UnixListener.fromFd(bad), { code: 'ERR_INVALID_ARG_VALUE' });
    }
    for (const bad of ['3', null, 3n]) {
      await assert.rejects(LocalSocketListener.fromFd(bad as never), { code: 'ERR_INVALID_ARG_TYPE' });
      await assert.rejects(UnixListener.fromFd(bad as never), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    await assert.rejects(LocalSocketListener.fromFd(100_000), { code: 'EBADF' });
    await assert.rejects(UnixListener.fromFd(100_000), { code: 'EBADF' });
    await assert.rejects(LocalSocketListener.fromFd(0, { allow: 'nobody' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
    const signal = AbortSignal.abort();
    await assert.rejects(UnixListener.fromFd(0, { signal }), { code: 'ABORT_ERR' });
  });
});

describe('a listening descriptor passed by number to a child', { skip: process.platform !== 'linux' && 'Linux: abstract names, and setpriv for a second user' }, () => {
  /** A bare listening socket of `type` on an abstract name (nobody accepts on it here), and that name. */
  function bareListener(t: import('node:test').TestContext, type: 'stream' | 'seqpacket'): { fd: number; name: string; close(): void } {
    const native = requireNative('test').unixSockets;
    const name = uniqueName('adopted');
    const fd = native.open(type === 'stream' ? 3 : 2);
    native.bind(fd, Buffer.from(`\0${name}`));
    native.listen(fd, 16);
    let open = true;
    t.after(() => close());
    const close = () => {
      if (open) closeFdQuietly(fd);
      open = false;
    };
    return { fd, name, close };
  }

  // The system's python3: a user's shim (pyenv) is not for another user.
  const systemPython = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const client = `
import socket, sys
kind, name = sys.argv[1:3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET if kind == 'seqpacket' else socket.SOCK_STREAM)
s.connect('\\0' + name); s.settimeout(20)
try:
    s.send(b'hi')
    print(s.recv(100).decode() or 'closed')
except (BrokenPipeError, ConnectionResetError):
    print('closed')
`;

  for (const [kind, type] of [['local', 'stream'], ['unix', 'stream'], ['unix', 'seqpacket']] as const) {
    test(`${kind === 'local' ? 'LocalSocketListener' : 'UnixListener'}.fromFd() of a ${type} listener keeps its allow rule: same-user serves this user and refuses another`, { timeout: 60_000 }, async (t) => {
      const { fd, name, close } = bareListener(t, type);
      const child = spawnFixture(t, 'adopt-listener', [kind, 'same-user'], process.env, { extraFds: [fd] });
      const ready = await child.next<{ fd: number; name: string; socketType: string }>('ready');
      assert.deepEqual(ready, { type: 'ready', fd: 4, name: `@${name}`, socketType: type });
      close(); // the child's copy is the listener now
      assert.equal((await python(t, client, [type, name]).output).trim(), 'echo:hi');
      const other = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', systemPython, '-c', client, type, name], { stdio: ['ignore', 'pipe', 'inherit'] });
      t.after(() => other.kill());
      let out = '';
      other.stdout!.on('data', (d) => (out += d));
      await exitOf(other);
      assert.equal(out.trim(), 'closed', 'the refused peer got nothing');
      const refused = await child.next<{ uid: number }>('refused');
      assert.equal(refused.uid, 65534);
      child.send({ type: 'close' });
      await child.next('closed');
    });
  }

  test("UnixListener.fromFd() with allow: 'any' serves another user; close() leaves another's socket file in place", { timeout: 60_000 }, async (t) => {
    const { fd, name, close } = bareListener(t, 'seqpacket');
    const child = spawnFixture(t, 'adopt-listener', ['unix', 'any'], process.env, { extraFds: [fd] });
    await child.next('ready');
    close();
    const other = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', systemPython, '-c', client, 'seqpacket', name], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => other.kill());
    let out = '';
    other.stdout!.on('data', (d) => (out += d));
    await exitOf(other);
    assert.equal(out.trim(), 'echo:hi');

    // A socket file adopted in this process: close() stops accepting, the file stays (it is its maker's).
    const file = path.join(scratchDir(t), 'kept.sock');
    const native = requireNative('test').unixSockets;
    const own = native.open(3);
    native.bind(own, Buffer.from(file));
    native.listen(own, 16);
    const listener = await UnixListener.fromFd(own);
    assert.equal(String(listener.name), file);
    assert.equal(listener.fd, own);
    const accepting = once(listener, 'connection');
    const conn = await connect(file);
    const [accepted] = await accepting;
    accepted.destroy();
    conn.destroy();
    await listener.close();
    assert.ok(fs.statSync(file).isSocket(), 'the socket file is still there');
    assert.throws(() => listener.fd, { code: 'ERR_INTERPROCESS_CLOSED' });
    await assert.rejects(connect(file), { code: 'ECONNREFUSED' });
  });
});
