// CommonJS works too (Node 20.19+, 22.12+): `node examples/local-socket-commonjs.cjs`.
// require('interprocess') gives the same module as import, in one process here for brevity.
'use strict';
const { connect, listen, nsName } = require('interprocess');

async function main() {
  const name = nsName(`interprocess-cjs-example-${process.pid}`);
  const listener = await listen(name);
  listener.on('connection', (conn) => conn.end('pong\n'));
  const conn = await connect(name);
  conn.end('ping\n');
  let reply = '';
  for await (const chunk of conn) reply += chunk;
  console.log(`commonjs client got: ${reply.trim()}`);
  await listener.close();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
