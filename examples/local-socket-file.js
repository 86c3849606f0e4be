// A socket file that only this user can use (Unix): `node examples/local-socket-file.js`.
// The listener creates the file with mode 0600 before anyone can connect, checks who connected
// from the kernel's peer credentials (where the native addon is loaded), and the file is removed
// when the listener closes. A client started before the server waits for it with { wait: true }.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, listen, nativeStatus } from 'interprocess';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'interprocess-example-'));
const socketPath = path.join(dir, 'control.sock');

// The client first: it retries until the server listens (here, 100 ms later), for up to 5 s.
const client = connect(socketPath, { wait: true, timeout: 5000 });
await new Promise((resolve) => setTimeout(resolve, 100));

const listener = await listen(socketPath, { mode: 0o600 });
console.log(`socket file mode: ${(fs.statSync(socketPath).mode & 0o777).toString(8)}`);
listener.on('connection', (conn) => {
  if (nativeStatus().loaded) {
    const { uid } = conn.peerCredentials();
    if (uid !== process.getuid()) return conn.destroy(); // only our own user
  }
  conn.end('welcome\n');
});

const conn = await client;
let reply = '';
for await (const chunk of conn) reply += chunk;
console.log(`client got: ${reply.trim()}`);

await listener.close();
console.log(`socket file removed: ${!fs.existsSync(socketPath)}`);
fs.rmSync(dir, { recursive: true, force: true });
