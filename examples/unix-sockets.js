// Unix datagram and seqpacket sockets with credentials and descriptor passing, in one process
// for brevity (each side works the same from another process). Run: node examples/unix-sockets.js
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bindDatagram, connectUnix, listenUnix, nsName } from 'interprocess';

// Datagrams: each message arrives exactly as sent, with the sender's name and credentials.
const name = nsName(`interprocess-example-${process.pid}`);
const server = await bindDatagram(name, { passCredentials: true });
server.on('message', ({ data, from, credentials }) => {
  console.log(`server got: ${data} (from pid ${credentials.pid})`);
  if (from) void server.send(`hello ${credentials.pid}`, { to: from });
});
const client = await bindDatagram(null, { autobind: true, connect: name });
await client.send('hi');
console.log(`client got: ${(await client.receive()).data}`);

// Seqpacket: a connection that keeps message boundaries; a descriptor travels with a message.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipc-example-'));
const socketPath = path.join(dir, 'files.sock');
const listener = await listenUnix(socketPath, { type: 'seqpacket', mode: 0o600 });
listener.on('connection', async (conn) => {
  const file = await fs.promises.open(new URL(import.meta.url), 'r');
  await conn.send('a file for you', { fds: [file] }); // the receiver gets its own copy
  await file.close();
  await conn.close();
});
const conn = await connectUnix(socketPath, { type: 'seqpacket' });
const { data, fds } = await conn.receive();
const handle = await fds[0].toFileHandle();
const firstLine = (await handle.readFile('utf8')).split('\n')[0];
console.log(`received "${data}" with a descriptor: ${firstLine}`);
console.log(`peer pid ${conn.peerCredentials().pid}`);
await handle.close();
await Promise.all([conn.close(), listener.close(), client.close(), server.close()]);
fs.rmSync(dir, { recursive: true, force: true });
