// What crosses from JS into the C core is checked, and what comes back is exact: maxFds on every
// socket type (against a sender we did not write), descriptors at the process's limit, pipe() at
// EMFILE, arrays that change under a send, paths that do not fit, and numbers that would wrap.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InterprocessError, type UnixSocket, bindDatagram, listenUnix } from 'interprocess';
import { requireNative } from '#internal/native/addon.js';
import { openFds, scratchDir } from '../helpers.js';

const linux = process.platform === 'linux' ? false : 'Linux: abstract names, /proc/self/fd, python3 send_fds';

// Connects to `socketPath` and sends one message per count in `counts`,
// each with that many descriptors of /dev/null; prints "sent" when done and waits for stdin to close.
const SENDER = `
import socket, sys, os
kind, path, counts = sys.argv[1], sys.argv[2], [int(c) for c in sys.argv[3].split(',')]
t = {'datagram': socket.SOCK_DGRAM, 'seqpacket': socket.SOCK_SEQPACKET, 'stream': socket.SOCK_STREAM}[kind]
s = socket.socket(socket.AF_UNIX, t)
null = os.open('/dev/null', os.O_RDONLY)
s.connect(path)
for n in counts:
    body = b'%d' % n
    if kind == 'stream': body = body.rjust(4)
    socket.send_fds(s, [body], [null] * n)
print('sent', flush=True)
sys.stdin.read()
`;

async function messagesFrom(socket: UnixSocket, count: number): Promise<Array<{ sent: number; fds?: number; code?: string }>> {
  const out: Array<{ sent: number; fds?: number; code?: string }> = [];
  while (out.length < count) {
    try {
      const message = (await socket.receive())!;
      const sent = Number(String(message.data).trim());
      out.push({ sent, fds: message.fds.length });
      message.fds.forEach((d) => d.close());
    } catch (error) {
      const e = error as InterprocessError & { data: Buffer };
      out.push({ sent: Number(String(e.data).trim()), code: e.code });
    }
  }
  return out;
}

for (const type of ['datagram', 'seqpacket', 'stream'] as const) {
  for (const maxFds of [1, 4, 32]) {
    test(`${type}, maxFds ${maxFds}: a message with that many descriptors delivers them all; one more, or as many more as the control buffer's rounding and credentials' room hold, is refused and closed`, { skip: linux, timeout: 30_000 }, async (t) => {
      const dir = scratchDir(t);
      const socketPath = path.join(dir, 's');
      // The kernel delivers up to (CMSG_SPACE(4 * maxFds) + the credentials' 32 bytes - 16) / 4.
      const slack = Math.floor((Math.ceil((4 * maxFds) / 8) * 8 + 16 + 32 - 16) / 4);
      const counts = [maxFds, maxFds + 1, slack, maxFds];
      let receiver: UnixSocket;
      let close: () => Promise<void>;
      if (type === 'datagram') {
        receiver = await bindDatagram(socketPath, { maxFds });
        close = () => receiver.close();
      } else {
        const listener = await listenUnix(socketPath, { type, maxFds });
        const accepted = new Promise<UnixSocket>((resolve) => listener.once('connection', resolve));
        close = async () => {
          await receiver?.close();
          await listener.close();
        };
        receiver = undefined as never;
        void accepted.then((s) => (receiver = s));
      }
      t.after(() => close());
      const sender = spawn('python3', ['-c', SENDER, type, socketPath, counts.join(',')], { stdio: ['pipe', 'pipe', 'inherit'] });
      t.after(() => sender.kill());
      await new Promise<void>((resolve, reject) => {
        sender.stdout!.once('data', () => resolve());
        sender.once('exit', (code) => reject(new Error(`the python sender exited (${code})`)));
      });
      while (receiver === undefined) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 20)); // the spawn's own descriptors settle
      const before = openFds(); // the messages wait in the kernel: none of their descriptors is here yet
      const got = await messagesFrom(receiver, counts.length);
      assert.deepEqual(got, [
        { sent: maxFds, fds: maxFds },
        { sent: maxFds + 1, code: 'ERR_INTERPROCESS_CTRUNC' },
        { sent: slack, code: 'ERR_INTERPROCESS_CTRUNC' },
        { sent: maxFds, fds: maxFds },
      ]);
      assert.equal(openFds(), before, 'every refused descriptor was closed');
      sender.stdin!.end();
    });
  }
}

test('at the descriptor limit, pipe() throws InterprocessError EMFILE, and descriptors the kernel cannot install are a typed EMFILE (not "raise maxFds"), none leaked', { skip: linux, timeout: 30_000 }, () => {
  const fixture = fileURLToPath(new URL('../fixtures/native-emfile.js', import.meta.url));
  const out = execFileSync('sh', ['-c', 'ulimit -n 64 && exec "$0" "$1"', process.execPath, fixture], { encoding: 'utf8', timeout: 20_000 });
  const report = JSON.parse(out) as Record<string, Record<string, unknown>> & { leaked: number };
  assert.equal(report.pipe!.interprocess, true, 'pipe() throws an InterprocessError');
  assert.equal(report.pipe!.code, 'EMFILE');
  assert.match(String(report.pipe!.message), /Cannot create a pipe: .*limit/);
  for (const key of ['none', 'some']) {
    assert.equal(report[key]!.interprocess, true, key);
    assert.equal(report[key]!.code, 'EMFILE', `${key}: ${JSON.stringify(report[key])}`);
    assert.doesNotMatch(String(report[key]!.message), /maxFds/);
  }
  assert.equal(report.some!.data, 'free 2', 'the message itself still arrives');
  assert.equal(report.leaked, 0);
});

test('receive refuses a metadata array too short for its header (it wrapped, and wrote past it)', { skip: linux }, async (t) => {
  const native = requireNative('test').unixSockets;
  const [a, b] = native.pair(1);
  t.after(() => [a, b].forEach((fd) => fs.closeSync(fd)));
  fs.writeSync(a, 'x');
  for (const length of [0, 1, 2, 9]) {
    const meta = new Int32Array(length);
    assert.throws(() => native.receive(b, 1, meta, new Int32Array(64), 1, Buffer.alloc(64), 0, 0), (e: InterprocessError) => e instanceof InterprocessError && e.code === 'ERR_OUT_OF_RANGE', `meta of ${length}`);
  }
  // A real one still reads the message.
  const meta = new Int32Array(2 + 8);
  const got = native.receive(b, 1, meta, new Int32Array(1), 1, Buffer.alloc(64), 0, 0);
  assert.equal(meta[0], 1);
  assert.equal(String(got!.subarray(0, meta[2])), 'x');
});

test('send takes memory only after every getter ran: an array detached by a getter is sent as what it is then (empty), never its old bytes', { skip: linux }, (t) => {
  const native = requireNative('test').unixSockets;
  const [a, b] = native.pair(2);
  t.after(() => [a, b].forEach((fd) => fs.closeSync(fd)));
  const big = new Uint8Array(new ArrayBuffer(100_000)).fill(7);
  const datas = [big, Buffer.from('second')];
  let moved: ArrayBuffer | null = null;
  const fdLists: unknown[] = [];
  Object.defineProperty(fdLists, 1, {
    get() {
      moved = structuredClone(big.buffer, { transfer: [big.buffer] }); // detaches big
      return null;
    },
  });
  const sent = native.send(a, 2, datas, 0, 2, null, fdLists as Array<Int32Array | null>, new Int32Array(1), undefined, undefined, null);
  assert.ok(moved !== null && big.byteLength === 0, 'the getter ran and detached the first message');
  assert.equal(sent, 2);
  const meta = new Int32Array(2 + 8 * 4);
  native.receive(b, 2, meta, new Int32Array(4), 1, Buffer.alloc(1 << 17), 0, 0);
  assert.equal(meta[0], 2);
  assert.equal(meta[2], 0, 'the detached message went as the empty array it had become');
  assert.equal(meta[2 + 8], 6);
});

test('a getter that throws during send leaves it with that error and nothing sent', { skip: linux }, (t) => {
  const native = requireNative('test').unixSockets;
  const [a, b] = native.pair(1);
  t.after(() => [a, b].forEach((fd) => fs.closeSync(fd)));
  const datas: unknown[] = [Buffer.from('one')];
  Object.defineProperty(datas, 1, { get: () => { throw new Error('from the getter'); } });
  assert.throws(() => native.send(a, 1, datas as Uint8Array[], 0, 2, null, null, new Int32Array(1), undefined, undefined, null), /from the getter/);
  assert.equal(native.receive(b, 1, new Int32Array(10), new Int32Array(1), 1, Buffer.alloc(64), 0, 0), undefined, 'nothing was sent');
});

test('numbers that do not fit are refused, never wrapped: descriptor 2**32 + fd is not fd', () => {
  const native = requireNative('test');
  const fd = fs.openSync(process.execPath, 'r');
  try {
    assert.throws(() => native.tryLock(2 ** 32 + fd), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => native.setCloexec(fd, 1 as never), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => native.dupCloexec(1.5), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => native.waitFd(fd, false, 2 ** 32), { code: 'ERR_OUT_OF_RANGE' });
    if (process.platform !== 'win32') {
      assert.throws(() => native.unixSockets.open(2 ** 32 + 1), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => native.unixSockets.listen(fd, 'many' as never), { code: 'ERR_INVALID_ARG_TYPE' });
      assert.throws(() => native.waitFd(2 ** 31 - 1, false, 0), { code: 'EBADF' }, 'a descriptor that is not open is not "ready"');
    }
  } finally {
    fs.closeSync(fd);
  }
});

test('mkfifo never cuts a path: one that does not fit is ENAMETOOLONG, also when it ends in a multibyte character; a NUL inside is refused', { skip: process.platform === 'win32' && 'no FIFOs' }, (t) => {
  const native = requireNative('test');
  const dir = scratchDir(t);
  // Directories up to 4094 bytes, then "/x" and a two-byte "é": 4097 bytes with it, 4094 cut at it.
  let deep = dir;
  while (deep.length < 4094 - 201) deep = path.join(deep, 'd'.repeat(200));
  deep = path.join(deep, 'd'.repeat(4094 - 2 - deep.length - 1));
  fs.mkdirSync(deep, { recursive: true });
  const cut = path.join(deep, 'x');
  assert.equal(Buffer.byteLength(cut), 4094);
  assert.throws(() => native.mkfifo(`${cut}é`, 0o600), (e: InterprocessError) => e instanceof InterprocessError && e.code === 'ENAMETOOLONG' && e.syscall === 'mkfifo');
  assert.equal(fs.existsSync(cut), false, 'no FIFO at the shorter path');
  const nul = path.join(dir, 'a');
  assert.throws(() => native.mkfifo(`${nul}\0b`, 0o600), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.equal(fs.existsSync(nul), false, 'no FIFO at the path before the NUL');
  assert.throws(() => native.mkfifo(path.join(dir, 'f'), 0o10000), { code: 'ERR_OUT_OF_RANGE' });
  native.mkfifo(path.join(dir, 'f'), 0o600);
  assert.ok(fs.statSync(path.join(dir, 'f')).isFIFO());
});

test('abstractConnect() checks its argument (it returned undefined), and its errors name connect, not bind', { skip: linux }, () => {
  const native = requireNative('test');
  assert.throws(() => (native.abstractConnect as () => number)(), (e: InterprocessError) => e instanceof InterprocessError && e.code === 'ERR_MISSING_ARGS');
  assert.throws(() => native.abstractConnect('\0name' as never), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => native.abstractConnect(Buffer.alloc(200)), { code: 'ENAMETOOLONG', syscall: 'connect' });
  assert.throws(() => native.abstractConnect(Buffer.from(`\0no-one-${process.pid}`)), { code: 'ECONNREFUSED', syscall: 'connect' });
  assert.throws(() => native.abstractListen(Buffer.alloc(200), 1), { code: 'ENAMETOOLONG', syscall: 'bind' });
});

test('every error the addon throws is an InterprocessError; callers still add what they were doing', () => {
  const native = requireNative('test');
  assert.throws(() => native.peerCredentials(2 ** 31 - 1), (e: InterprocessError) => e instanceof InterprocessError && e.code === 'EBADF' && e.syscall === 'getsockopt' && e.errno! < 0);
  assert.throws(() => native.peerCredentials('x' as never), (e: InterprocessError) => e instanceof InterprocessError && e.code === 'ERR_INVALID_ARG_TYPE');
  assert.equal(native.setErrorFactory(() => new Error('not ours')), false, 'the loader set it first; it stays');
  assert.throws(() => native.peerCredentials(2 ** 31 - 1), (e: Error) => e instanceof InterprocessError);
});
