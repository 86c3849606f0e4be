// A local socket server and a client in two processes: run `node examples/local-socket-echo.js`.
// The server takes a namespaced name (an abstract socket on Linux, a named pipe on Windows, a
// private socket file elsewhere), echoes each connection, and tells who connected.
import { fork } from 'node:child_process';
import { connect, listen, nsName } from 'interprocess';

const name = nsName(`interprocess-example-${process.pid}`);

if (process.argv[2] === 'client') {
  const conn = await connect(nsName(process.argv[3]), { wait: true, timeout: 5000 });
  conn.end('hello over a local socket');
  let reply = '';
  for await (const chunk of conn) reply += chunk;
  console.log(`client got: ${reply}`);
} else {
  const listener = await listen(name);
  console.log(`listening on ${listener.name}`);
  fork(new URL(import.meta.url).pathname, ['client', name.name]);
  for await (const conn of listener) {
    const { pid } = conn.peerCredentials();
    console.log(`connection from pid ${pid}`);
    conn.pipe(conn);
    conn.on('close', () => listener.close()); // one client, then done: this ends the loop
  }
}
