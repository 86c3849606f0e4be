// Windows named pipes: a message-mode pipe to another process, both process ids; elsewhere the
// clear error that replaces them.
import assert from 'node:assert/strict';
import { connectNamedPipe, listenNamedPipe } from 'interprocess';

export const title = 'Windows named pipes';

export async function run(smoke) {
  if (smoke.platform !== 'win32') {
    smoke.note('named pipes are a Windows primitive: they must say so here');
    await smoke.check('listenNamedPipe() fails with ERR_INTERPROCESS_UNSUPPORTED', () => assert.rejects(listenNamedPipe('x'), { code: 'ERR_INTERPROCESS_UNSUPPORTED' }));
    return;
  }
  await smoke.check('a child sends whole messages over a message-mode pipe; both process ids', async () => {
    const name = smoke.uniqueName('smoke');
    const listener = await listenNamedPipe(name, { type: 'message' });
    const child = smoke.spawnChild('named-pipe.smoke.mjs', [name]);
    const { value: pipe } = await listener[Symbol.asyncIterator]().next();
    assert.equal(pipe.pipeEnds().clientProcessId, child.pid);
    const messages = [];
    for await (const message of pipe) messages.push(String(message));
    assert.deepEqual(messages, ['', 'one', 'x'.repeat(100_000)].map(String));
    assert.equal(await child.exited, 0);
    await listener.close();
    return `pid ${pipe.pipeEnds().clientProcessId}`;
  });
}

export async function child([name]) {
  const pipe = await connectNamedPipe(name, { type: 'message', wait: true, timeout: 30_000 });
  assert.equal(pipe.pipeEnds().serverProcessId, process.ppid);
  await Promise.all([pipe.send(''), pipe.send('one'), pipe.send('x'.repeat(100_000))]);
  await pipe.close();
}
