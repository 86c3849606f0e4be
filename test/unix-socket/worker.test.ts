// Unix sockets in worker threads: they work there, and terminating a worker with listeners,
// connections, queued sends and unread descriptors leaks no descriptor and crashes nothing: each
// socket's watcher owns its descriptor and closes it when the worker's environment is torn down.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { bindDatagram, nsName } from 'interprocess';
import { openFds, uniqueName } from '../helpers.js';

test('Unix sockets work in a worker, and terminate() closes every descriptor they owned', { timeout: 30_000 }, async () => {
  await using us = await bindDatagram(nsName(uniqueName()));
  await sleep(10);
  const before = openFds();
  for (let i = 0; i < 3; i++) {
    const echoName = uniqueName('worker');
    const worker = new Worker(new URL('../fixtures/worker-unix.js', import.meta.url), { workerData: { echoName, listenName: uniqueName('worker') } });
    const [ready] = (await once(worker, 'message')) as [{ type: string; queued: number; listening: boolean; held: number }];
    assert.equal(ready.type, 'ready');
    assert.equal(ready.held, 1, 'the worker holds a received descriptor');
    assert.ok(ready.queued > 0, 'sends are queued in the worker');
    await us.send(`ping ${i}`, { to: nsName(echoName) });
    assert.equal(String((await us.receive())!.data), `ping ${i}`);
    assert.equal(await worker.terminate(), 1);
  }
  await sleep(50);
  assert.equal(openFds(), before, 'the workers\' sockets and received descriptors are all closed');
  await us.send('main is fine', { to: us.localName! });
  assert.equal(String((await us.receive())!.data), 'main is fine');
});
