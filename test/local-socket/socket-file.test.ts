// Socket files in directories other users can write: the lock file and the staging directory never
// follow a link or take over a file another user made (root against nobody, across processes);
// and every path up to sun_path's limit can be staged, however long its directory.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { connect, listen } from 'interprocess';
import { bindSocketFile, netServerBinder, releaseSocketFile } from '#internal/unix/socket-file.js';
import { sunPathMax } from '#internal/platform.js';
import { scratchDir } from '../helpers.js';

const NOBODY = 65534;
const hasSetpriv = (() => {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const asRootAgainstNobody =
  process.platform === 'win32' ? 'Windows has no socket files (local sockets are named pipes)'
  : process.getuid?.() !== 0 ? 'needs root: the attacker (nobody) plants files for root to trip over'
  : !hasSetpriv ? 'needs setpriv (util-linux) to act as nobody'
  : false;

/** Runs argv as nobody (uid and gid 65534, no groups). */
function asNobody(argv: string[]): void {
  execFileSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...argv], { stdio: 'pipe' });
}

/** A 0777 directory (not sticky: fs.protected_symlinks never guards it) and a root-only one beside it. */
function sharedAndPrivate(t: import('node:test').TestContext): { shared: string; secret: string } {
  const dir = scratchDir(t);
  fs.chmodSync(dir, 0o755);
  const shared = path.join(dir, 'shared');
  const secret = path.join(dir, 'secret');
  fs.mkdirSync(shared);
  fs.chmodSync(shared, 0o777);
  fs.mkdirSync(secret, { mode: 0o700 });
  return { shared, secret };
}

test('a lock file planted as a symbolic link by another user is refused, and nothing is made where it points', { skip: asRootAgainstNobody, timeout: 30_000 }, async (t) => {
  const { shared, secret } = sharedAndPrivate(t);
  const socketPath = path.join(shared, 'server.sock');
  const victim = path.join(secret, 'made-by-root');
  asNobody(['ln', '-s', victim, `${socketPath}.lock`]);
  await assert.rejects(listen(socketPath), (error: NodeJS.ErrnoException) => {
    assert.equal(error.code, 'EACCES');
    assert.match(error.message, /symbolic link/);
    assert.ok(error.message.includes(`${socketPath}.lock`), error.message);
    return true;
  });
  assert.equal(fs.existsSync(victim), false, 'no file was created through the link');
  assert.equal(fs.lstatSync(`${socketPath}.lock`).isSymbolicLink(), true, 'the planted link is left alone');
  assert.equal(fs.existsSync(socketPath), false, 'no socket file was made');
  // A link to an existing root file: not opened, not changed.
  const existing = path.join(secret, 'config');
  fs.writeFileSync(existing, 'root data', { mode: 0o644 });
  fs.rmSync(`${socketPath}.lock`);
  asNobody(['ln', '-s', existing, `${socketPath}.lock`]);
  await assert.rejects(listen(socketPath), { code: 'EACCES' });
  assert.equal(fs.readFileSync(existing, 'utf8'), 'root data');
  assert.equal(fs.statSync(existing).mode & 0o777, 0o644);
});

test("a lock file another user made is refused (EACCES), neither truncated nor chmod'ed", { skip: asRootAgainstNobody, timeout: 30_000 }, async (t) => {
  const { shared } = sharedAndPrivate(t);
  const socketPath = path.join(shared, 'server.sock');
  asNobody(['sh', '-c', `umask 0; echo nobody > '${socketPath}.lock'`]);
  await assert.rejects(listen(socketPath), (error: NodeJS.ErrnoException) => {
    assert.equal(error.code, 'EACCES');
    assert.match(error.message, /belongs to uid 65534/);
    return true;
  });
  const stats = fs.statSync(`${socketPath}.lock`);
  assert.deepEqual([stats.uid, stats.mode & 0o777, fs.readFileSync(`${socketPath}.lock`, 'utf8')], [NOBODY, 0o666, 'nobody\n']);
  // Once it is gone, root listens there, and its own lock file is private and not a link.
  fs.rmSync(`${socketPath}.lock`);
  await using listener = await listen(socketPath, { mode: 0o600 });
  const lock = fs.lstatSync(`${socketPath}.lock`);
  assert.ok(lock.isFile());
  assert.equal(lock.uid, 0);
  assert.equal(lock.mode & 0o077, 0, 'the lock file is private');
  assert.ok(listener.listening);
});

test('a staging directory swapped for a link by another user: the socket is bound in ours all the same, nothing lands where the link points', { skip: asRootAgainstNobody || (process.platform !== 'linux' && 'reaching the staging directory by descriptor needs /proc/self/fd (Linux)'), timeout: 30_000 }, async (t) => {
  const { shared, secret } = sharedAndPrivate(t);
  const socketPath = path.join(shared, 'server.sock');
  const server = net.createServer();
  const inner = netServerBinder(server, undefined);
  let inSecretAfterBind: string[] = [];
  const binder = {
    ...inner,
    bind: async (staged: string, mode: number | undefined) => {
      // nobody renames our staging directory (allowed in a 0777 directory without the sticky bit)
      // and puts a link to a root-only directory in its place, just before we bind.
      const [name] = fs.readdirSync(shared).filter((entry) => entry.startsWith('.'));
      assert.ok(name, 'the staging directory is there');
      asNobody(['sh', '-c', `mv '${shared}/${name}' '${shared}/moved' && ln -s '${secret}' '${shared}/${name}'`]);
      await inner.bind(staged, mode);
      inSecretAfterBind = fs.readdirSync(secret);
    },
  };
  const file = await bindSocketFile(socketPath, { mode: 0o600 }, binder);
  t.after(() => {
    releaseSocketFile(file);
    server.close();
  });
  assert.deepEqual(inSecretAfterBind, [], 'nothing was bound through the link');
  assert.deepEqual(fs.readdirSync(secret), []);
  assert.equal(fs.statSync(secret).mode & 0o777, 0o700, 'the linked directory was not chmod\'ed');
  assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
  const client = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  client.destroy();
});

test('a lock file that is a FIFO or a directory is refused without hanging', { skip: process.platform === 'win32' && 'Windows has no socket files', timeout: 30_000 }, async (t) => {
  const dir = scratchDir(t);
  const fifo = path.join(dir, 'fifo.sock');
  execFileSync('mkfifo', [`${fifo}.lock`]);
  await assert.rejects(listen(fifo), { code: 'EACCES', message: /not a regular file/ });
  const directory = path.join(dir, 'dir.sock');
  fs.mkdirSync(`${directory}.lock`);
  await assert.rejects(listen(directory), (error: NodeJS.ErrnoException) => ['EACCES', 'EISDIR'].includes(error.code!));
});

test('every socket path up to sun_path\'s limit listens, however long its directory', { skip: process.platform !== 'linux' && 'staging through /proc/self/fd is Linux; elsewhere the directory limit is documented and is its ENAMETOOLONG', timeout: 60_000 }, async (t) => {
  const max = sunPathMax();
  const base = scratchDir(t);
  // [directory length, path length]: the 102/104, a directory with room for one character, the limit.
  for (const [dirLength, pathLength] of [[102, 104], [max - 2, max], [max - 8, max], [96, max], [60, 70]] as const) {
    const dir = path.join(base, 'd'.repeat(dirLength - base.length - 1));
    assert.equal(Buffer.byteLength(dir), dirLength);
    fs.mkdirSync(dir, { recursive: true });
    const socketPath = path.join(dir, 's'.repeat(pathLength - dirLength - 1));
    assert.equal(Buffer.byteLength(socketPath), pathLength);
    const listener = await listen(socketPath, { mode: 0o600 });
    assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600, `${pathLength}: mode applied`);
    const accepted = new Promise((resolve) => listener.once('connection', resolve));
    const client = await connect(socketPath);
    await accepted;
    client.destroy();
    await listener.close();
    assert.deepEqual(fs.readdirSync(dir), [], `${dirLength}/${pathLength}: no staging directory, socket or lock file left`);
    fs.rmSync(dir, { recursive: true });
  }
  // One byte over the limit is the name check's ENAMETOOLONG, which says the limit.
  const over = path.join(base, 'o'.repeat(max + 1 - base.length - 1));
  await assert.rejects(listen(over), { code: 'ENAMETOOLONG', message: new RegExp(String(max)) });
});
