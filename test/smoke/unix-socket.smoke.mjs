// Unix sockets: a seqpacket pair carrying a message and a descriptor, and a datagram socket.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { bindDatagram, nsName, pipe, unixSocketPair } from 'interprocess';

export const title = 'Unix sockets';

export async function run(smoke) {
  if (smoke.platform === 'win32') {
    smoke.note('Windows has no Unix datagram or seqpacket sockets: unixSocketPair() must say so');
    await smoke.check('unixSocketPair fails with ERR_INTERPROCESS_UNSUPPORTED', () => assert.throws(() => unixSocketPair({ type: 'seqpacket' }), { code: 'ERR_INTERPROCESS_UNSUPPORTED' }));
    return;
  }
  await smoke.check('a seqpacket pair carries a message with a descriptor', async () => {
    const [a, b] = unixSocketPair({ type: process.platform === 'darwin' ? 'stream' : 'seqpacket' });
    const { sender, receiver } = pipe();
    await a.send('a pipe end for you', { fds: [receiver.fd] });
    const message = await b.receive();
    assert.equal(String(message.data), 'a pipe end for you');
    assert.equal(message.fds.length, 1);
    const fd = message.fds[0].take();
    sender.end('through the passed descriptor');
    const buffer = Buffer.alloc(64);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const n = fs.readSync(fd, buffer);
    assert.equal(String(buffer.subarray(0, n)), 'through the passed descriptor');
    fs.closeSync(fd);
    receiver.destroy();
    await a.close();
    await b.close();
  });
  if (process.platform === 'linux') {
    await smoke.check('datagrams to an abstract name', async () => {
      const name = nsName(smoke.uniqueName('smoke-dgram'));
      const server = await bindDatagram(name);
      const client = await bindDatagram(null, { connect: name });
      await client.send('one datagram');
      const message = await server.receive();
      assert.equal(String(message.data), 'one datagram');
      await client.close();
      await server.close();
    });
  }
}
