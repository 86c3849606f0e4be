// Local sockets: a listener here, a client in another process, an echo, and who connected.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, fsName, listen, nsName } from 'interprocess';

export const title = 'local sockets';

/** The text up to the first newline (no half-close: Windows pipes under Wine do not keep it). */
function readLine(socket) {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    const onData = (chunk) => {
      text += chunk;
      if (!text.includes('\n')) return;
      socket.off('data', onData).off('end', onEnd).off('error', reject).pause();
      resolve(text.slice(0, text.indexOf('\n')));
    };
    const onEnd = () => reject(new Error(`the connection ended before a full line; got ${JSON.stringify(text)}`));
    socket.on('data', onData).once('end', onEnd).once('error', reject);
  });
}

export async function run(smoke) {
  const names = [nsName(smoke.uniqueName('smoke'))];
  let dir = null;
  if (process.platform !== 'win32') {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoke-'));
    names.push(fsName(path.join(dir, 'smoke.sock')));
  }
  try {
    for (const name of names) {
      await smoke.check(`listen, connect from another process, echo: ${name}`, async () => {
        const listener = await listen(name, name.path ? { mode: 0o600 } : {});
        const child = smoke.spawnChild('local-socket.smoke.mjs', [name.kind, name.name]);
        try {
          const conn = await Promise.race([
            listener[Symbol.asyncIterator]().next().then((r) => r.value),
            child.exited.then((code) => Promise.reject(new Error(`the client exited (${code}) before connecting`))),
          ]);
          conn.on('error', () => {});
          const message = await readLine(conn);
          assert.equal(message, `hello from ${child.pid}`);
          let detail = 'peer credentials: ';
          if (process.platform === 'win32') {
            assert.deepEqual(conn.peerCredentials(), { pid: child.pid, uid: null, gid: null });
            detail += `pid ${child.pid} (Windows: no uid or gid)`;
          } else {
            const credentials = conn.peerCredentials();
            assert.equal(credentials.pid, child.pid);
            assert.equal(credentials.uid, process.getuid());
            assert.equal(credentials.gid, process.getgid());
            detail += `pid ${credentials.pid}, uid ${credentials.uid}`;
          }
          conn.end(`echo: ${message}\n`);
          assert.equal(await child.exited, 0, 'the client failed');
          return detail;
        } finally {
          child.kill();
          await listener.close();
        }
      });
    }
  } finally {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function child([kind, name]) {
  const conn = await connect(kind === 'namespaced' ? nsName(name) : fsName(name), { wait: true, timeout: 120_000 });
  conn.write(`hello from ${process.pid}\n`);
  assert.equal(await readLine(conn), `echo: hello from ${process.pid}`);
  conn.end();
}
