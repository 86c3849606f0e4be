// Names: resolution on every platform style, and every bad name fails before any syscall.
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { connect, fsName, listen, namespaceDirectory, nsName, supportedNameKinds } from 'interprocess';
import { openFds } from '../helpers.js';

const windows = process.platform === 'win32';
// Names that are too long for this platform's own rules.
const tooLongPath = windows ? `\\\\.\\pipe\\${'x'.repeat(300)}` : '/tmp/' + 'x'.repeat(200);
const tooLongNs = 'x'.repeat(windows ? 300 : 108);

test('filesystem names resolve to absolute paths', { skip: windows && 'Windows filesystem names are pipe paths, used as given (tested below)' }, () => {
  const name = fsName('relative.sock');
  assert.equal(name.kind, 'filesystem');
  assert.equal(name.address, path.resolve('relative.sock'));
  assert.equal(name.path, name.address);
  assert.equal(String(name), name.address);
  assert.ok(Object.isFrozen(name));
});

test('namespaced names: Linux abstract, Windows pipe, elsewhere a private directory', () => {
  const linux = nsName('my-app', 'linux');
  assert.equal(linux.address, '\0my-app');
  assert.equal(linux.path, null);
  assert.equal(String(linux), '@my-app');

  const windows = nsName('my-app', 'win32');
  assert.equal(windows.address, '\\\\.\\pipe\\my-app');
  assert.equal(windows.path, null);

  const mac = nsName('my-app/sub dir/sock', 'darwin');
  assert.equal(mac.privateDirectory, namespaceDirectory());
  assert.equal(mac.address, path.join(namespaceDirectory(), 'my-app', 'sub dir', 'sock'));
  assert.equal(mac.path, mac.address);
});

test('the namespace directory: $XDG_RUNTIME_DIR, else a per-user directory under the temp dir', () => {
  assert.equal(namespaceDirectory({ XDG_RUNTIME_DIR: '/run/user/1000' }), path.join('/run/user/1000', 'interprocess'));
  // Windows has no uid (and uses the pipe namespace instead): the directory says 'user' there.
  assert.equal(namespaceDirectory({}), path.join(os.tmpdir(), `interprocess-${process.getuid?.() ?? 'user'}`));
});

test('Windows filesystem names must be pipe paths', () => {
  assert.equal(fsName('\\\\.\\pipe\\x', 'win32').address, '\\\\.\\pipe\\x');
  assert.equal(fsName('//./pipe/x', 'win32').address, '//./pipe/x');
  assert.equal(fsName('\\\\server\\pipe\\x', 'win32').address, '\\\\server\\pipe\\x');
  for (const bad of ['C:\\temp\\x', '\\\\.\\pipe\\', 'x', '\\\\.\\notpipe\\x']) {
    assert.throws(() => fsName(bad, 'win32'), { code: 'ERR_INVALID_ARG_VALUE', message: /not a Windows pipe path/ }, bad);
  }
  assert.throws(() => nsName('x'.repeat(250), 'win32'), { code: 'ENAMETOOLONG' });
});

test('supportedNameKinds tells the namespace style and the length limit', () => {
  assert.deepEqual(supportedNameKinds('linux'), { filesystem: true, namespaced: true, namespaceStyle: 'abstract', maxLength: 107 });
  assert.deepEqual(supportedNameKinds('darwin'), { filesystem: true, namespaced: true, namespaceStyle: 'directory', maxLength: 103 });
  assert.deepEqual(supportedNameKinds('win32'), { filesystem: true, namespaced: true, namespaceStyle: 'pipe', maxLength: 256 });
  assert.deepEqual(supportedNameKinds(), supportedNameKinds(process.platform));
  assert.equal(supportedNameKinds().namespaceStyle, windows ? 'pipe' : process.platform === 'linux' ? 'abstract' : 'directory');
});

test('length limits: 107 bytes on Linux, 103 on macOS, counted in UTF-8', () => {
  const base = '/tmp/';
  const fits = base + 'a'.repeat(107 - base.length);
  assert.equal(fsName(fits, 'linux').address, fits);
  assert.throws(() => fsName(fits + 'a', 'linux'), (e: { code: string; message: string }) => e.code === 'ENAMETOOLONG' && /108 bytes/.test(e.message) && /107/.test(e.message));
  assert.throws(() => fsName(base + 'a'.repeat(103 - base.length + 1), 'darwin'), { code: 'ENAMETOOLONG' });
  assert.equal(fsName(base + 'a'.repeat(103 - base.length), 'darwin').address.length, 103);
  assert.throws(() => nsName('é'.repeat(54), 'linux'), { code: 'ENAMETOOLONG' }); // 108 bytes
  assert.equal(nsName('é'.repeat(53), 'linux').address.length, 54);
});

test('bad names fail before any syscall, with no descriptor leaked', async () => {
  // Windows has no descriptor table to count (/proc/self/fd); the calls are still checked there.
  const before = windows ? 0 : openFds();
  const cases: Array<[() => unknown, string]> = [
    [() => fsName(''), 'ERR_INVALID_ARG_VALUE'],
    [() => nsName(''), 'ERR_INVALID_ARG_VALUE'],
    [() => fsName('/tmp/a\0b'), 'ERR_INVALID_ARG_VALUE'],
    [() => nsName('a\0b'), 'ERR_INVALID_ARG_VALUE'],
    [() => fsName(tooLongPath), 'ENAMETOOLONG'],
    [() => nsName(tooLongNs), 'ENAMETOOLONG'],
    [() => fsName(42 as unknown as string), 'ERR_INVALID_ARG_TYPE'],
    [() => nsName('../escape', 'darwin'), 'ERR_INVALID_ARG_VALUE'],
    [() => nsName('/abs', 'darwin'), 'ERR_INVALID_ARG_VALUE'],
  ];
  for (const [make, code] of cases) assert.throws(make, { code }, String(make));
  await assert.rejects(listen(''), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(connect(tooLongPath), { code: 'ENAMETOOLONG' });
  await assert.rejects(listen({ kind: 'bogus' } as never), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(connect(windows ? '\\\\.\\pipe\\x' : '/tmp/x.sock', { timeout: -1 }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.equal(windows ? 0 : openFds(), before);
});
