// Peers that no one here wrote: socat talks to our listeners, and we talk to socat's.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { connect, fsName, listen, nsName } from 'interprocess';
import { readAll, scratchDir, uniqueName } from '../helpers.js';

function haveSocat(): boolean {
  try {
    execFileSync('socat', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// socat is a test dependency (.ci/run installs it); without it these tests fail, they do not skip.
const socatMissing = 'socat is not installed: `apt-get install socat` (.ci/run does this)';
// On Windows (and so under Wine) there is no socat to run, and local sockets are named pipes there,
// which socat does not speak; there, Node's own pipe client is the peer no one here wrote
// (security.test.ts).
const noSocat = process.platform === 'win32' && 'socat has no Windows build (Wine runs only Windows programs), and Windows local sockets are named pipes, which socat does not speak';

/** Runs socat with `input` on its stdin; resolves with its stdout. */
function socat(args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('socat', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`socat exited ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

for (const kind of ['filesystem', 'abstract'] as const) {
  test(`socat connects to our listener (${kind} name) and exchanges data`, { skip: noSocat }, async (t) => {
    assert.ok(haveSocat(), socatMissing);
    const raw = kind === 'filesystem' ? path.join(scratchDir(t), 'socat.sock') : uniqueName();
    const name = kind === 'filesystem' ? fsName(raw) : nsName(raw);
    await using listener = await listen(name, { allowHalfOpen: true });
    listener.on('connection', async (conn) => {
      const request = String(await readAll(conn));
      conn.end(request.toUpperCase());
    });
    const address = kind === 'filesystem' ? `UNIX-CONNECT:${raw}` : `ABSTRACT-CONNECT:${raw}`;
    const reply = await socat(['-t', '5', '-', address], 'hello from socat\n');
    assert.equal(reply, 'HELLO FROM SOCAT\n');
  });

  test(`we connect to socat's listener (${kind} name) and exchange data`, { skip: noSocat }, async (t) => {
    assert.ok(haveSocat(), socatMissing);
    const raw = kind === 'filesystem' ? path.join(scratchDir(t), 'socat-server.sock') : uniqueName();
    const address = kind === 'filesystem' ? `UNIX-LISTEN:${raw}` : `ABSTRACT-LISTEN:${raw}`;
    const server = spawn('socat', [address, 'EXEC:rev'], { stdio: 'ignore' });
    t.after(() => server.kill());
    const conn = await connect(kind === 'filesystem' ? fsName(raw) : nsName(raw), { wait: true, timeout: 5000, allowHalfOpen: true });
    conn.end('interprocess\n');
    assert.equal(String(await readAll(conn)), 'ssecorpretni\n');
  });
}
