// An RPC server and a client in two processes: run `node examples/rpc.js`. The server answers
// 'add', and broadcasts an event that the client prints.
import { fork } from 'node:child_process';
import { connectRpc, nsName, serveRpc } from 'interprocess';

const name = nsName(process.argv[3] ?? `interprocess-rpc-example-${process.pid}`);

if (process.argv[2] === 'client') {
  const rpc = await connectRpc(name, { wait: true, timeout: 5000, requestTimeout: 5000 });
  rpc.on('event', (event, body) => console.log(`client got event ${event}: ${body}`));
  console.log(`client: 2 + 3 = ${await rpc.request('add', [2, 3])}`);
  const news = new Promise((resolve) => rpc.once('event', resolve)); // before asking: it may come at once
  await rpc.request('ready');
  await news;
  await rpc.close();
} else {
  const server = await serveRpc(name);
  server.handle('add', ([a, b]) => a + b);
  server.handle('ready', () => {
    setImmediate(() => server.broadcast('news', 'hello to every client'));
    return true;
  });
  const child = fork(new URL(import.meta.url).pathname, ['client', name.name]);
  child.on('exit', async () => {
    await server.close();
    console.log('server closed');
  });
}
