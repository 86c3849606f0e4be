// Run with INTERPROCESS_PREBUILD pointing at a directory whose binary is missing or does not
// load (node-gyp-build looks there instead of the package): importing still works, what Node
// core can do still works, and a native-only call throws ERR_INTERPROCESS_NATIVE saying why.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, listen, nativeStatus } from 'interprocess';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoke-'));
const socketPath = path.join(dir, 'degraded.sock');
const listener = await listen(socketPath);
listener.on('connection', (conn) => conn.on('error', () => {}).end('still works\n'));
const conn = await connect(socketPath);
let echoed = '';
for await (const chunk of conn) echoed += chunk;
const second = await connect(socketPath);
let error = null;
try {
  second.peerCredentials();
} catch (e) {
  error = { code: e.code, message: e.message };
}
second.destroy();
await listener.close();
fs.rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ status: nativeStatus(), echoed, error }));
