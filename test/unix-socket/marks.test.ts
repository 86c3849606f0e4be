// How a seqpacket read tells an empty message from the end (native/unix/receive.c, "mark"): a
// socket we make or accept has SO_TIMESTAMP on, so every real message carries a control message
// and the end none, with nothing to do per read. These pin what that must keep: empty messages
// are messages up to the end, credentials come exactly when SO_PASSCRED is on, and the room the
// timestamp takes never cuts a message's descriptors short.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { unixSocketPair } from 'interprocess';

const linux = process.platform === 'linux';

test('a seqpacket socket pair: empty messages before the end are messages, then the end', { skip: !linux && 'seqpacket marking is Linux only' }, async (t) => {
  const [a, b] = unixSocketPair({ type: 'seqpacket' });
  t.after(() => Promise.all([a.close(), b.close()]));
  const sent = ['', 'one', '', '', 'two', ''];
  for (const message of sent) await a.send(message);
  await a.close(); // the end, after everything sent: read after it, all of it at once
  const got: string[] = [];
  for await (const message of b) {
    got.push(String(message.data));
    assert.equal(message.credentials, null, 'no credentials unless asked for');
  }
  assert.deepEqual(got, sent);
  assert.equal(await b.receive(), null, 'then the end, and it stays the end');
});

test('seqpacket: exactly maxFds descriptors with credentials on still fit beside the timestamp', { skip: !linux && 'seqpacket marking is Linux only' }, async (t) => {
  const file = fs.openSync(process.execPath, 'r');
  t.after(() => fs.closeSync(file));
  for (const maxFds of [1, 3, 64]) {
    for (const passCredentials of [false, true]) {
      const [a, b] = unixSocketPair({ type: 'seqpacket', maxFds, passCredentials });
      await a.send('', { fds: Array.from({ length: maxFds }, () => file) });
      await a.send('');
      const message = (await b.receive())!;
      assert.equal(message.data.length, 0);
      assert.equal(message.fds.length, maxFds, `maxFds ${maxFds}, passCredentials ${passCredentials}`);
      assert.equal(message.credentials !== null, passCredentials);
      for (const d of message.fds) d.close();
      assert.equal((await b.receive())!.data.length, 0, 'an empty message after it');
      await a.close();
      assert.equal(await b.receive(), null);
      await b.close();
    }
  }
});
