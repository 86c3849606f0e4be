// Every socket type x {filesystem name, abstract name, socket pair}, between two processes, in
// both directions: each message goes to an echo peer in a child and comes back; datagram and
// seqpacket messages keep their boundaries exactly (sizes 0, 1, 1000, 200 000, and 512 and 513
// either side of the size up to which a batch copies messages into one buffer), a stream keeps
// its bytes.
import assert from 'node:assert/strict';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { type UnixSocket, type UnixSocketType, bindDatagram, connectUnix, fsName, nsName, unixSocketPair } from 'interprocess';
import { patternBytes, scratchDir, spawnFixture, uniqueName } from '../helpers.js';

const SIZES: Record<UnixSocketType, number[]> = {
  datagram: [0, 1, 512, 513, 1000, 200_000, 64],
  seqpacket: [0, 1, 512, 513, 1000, 200_000, 64],
  stream: [1, 512, 513, 1000, 200_000, 64], // a stream has no empty messages: 0 bytes send nothing
};

/** Our end of a conversation with the echo peer, started as a child. */
async function peer(t: TestContext, type: UnixSocketType, kind: 'fs' | 'ns' | 'pair'): Promise<UnixSocket> {
  if (kind === 'pair') {
    const [ours, theirs] = unixSocketPair({ type });
    const child = spawnFixture(t, 'unix-echo', [type, 'pair', '-'], process.env, { extraFds: [theirs.fd] });
    await child.next('ready');
    await theirs.close(); // the child has its own copy now
    t.after(() => ours.close());
    return ours;
  }
  const raw = kind === 'fs' ? path.join(scratchDir(t), 'echo.sock') : uniqueName();
  const name = kind === 'fs' ? fsName(raw) : nsName(raw);
  const child = spawnFixture(t, 'unix-echo', [type, kind, raw]);
  await child.next('ready');
  let socket: UnixSocket;
  if (type === 'datagram') {
    // Bound too, so that the echo can come back to us; connected, so only the echo peer reaches us.
    const own = kind === 'fs' ? fsName(path.join(path.dirname(raw), 'us.sock')) : nsName(uniqueName());
    socket = await bindDatagram(own, { connect: name });
  } else {
    socket = await connectUnix(name, { type, wait: true, timeout: 10_000 });
  }
  t.after(() => socket.close());
  return socket;
}

for (const type of ['datagram', 'seqpacket', 'stream'] as const) {
  for (const kind of ['fs', 'ns', 'pair'] as const) {
    const label = { fs: 'filesystem name', ns: 'abstract name', pair: 'socket pair' }[kind];
    test(`${type} over a ${label}: messages go to another process and back intact`, { timeout: 60_000 }, async (t) => {
      const socket = await peer(t, type, kind);
      const sizes = SIZES[type];
      const sent = sizes.map((size, i) => patternBytes(size, i + 1));
      // All at once: the sends queue and go in order, in batches.
      await Promise.all(sent.map((data) => socket.send(data)));
      if (type === 'stream') {
        const expected = Buffer.concat(sent);
        const chunks: Buffer[] = [];
        let length = 0;
        while (length < expected.length) {
          const message = await socket.receive();
          assert.ok(message, 'the stream ended early');
          chunks.push(message.data);
          length += message.data.length;
        }
        assert.ok(Buffer.concat(chunks).equals(expected), 'the stream came back byte for byte');
        await socket.end();
        assert.equal(await socket.receive(), null, 'the peer ended its side after ours');
      } else {
        for (const [i, data] of sent.entries()) {
          const message = await socket.receive();
          assert.ok(message, `message ${i} came back`);
          assert.equal(message.data.length, data.length, `message ${i} kept its boundary (${data.length} bytes)`);
          assert.ok(message.data.equals(data), `message ${i} came back intact`);
        }
        if (type === 'seqpacket') {
          await socket.end();
          assert.equal(await socket.receive(), null, 'the peer ended its side after ours');
        }
      }
    });
  }
}
