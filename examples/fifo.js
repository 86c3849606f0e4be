// A FIFO between this process and the shell: run `node examples/fifo.js`.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createFifo, openFifoReader } from 'interprocess';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fifo-example-'));
const fifo = path.join(dir, 'messages');
await createFifo(fifo, { mode: 0o600 });
const reader = openFifoReader(fifo); // opens at once; the shell writes below
execFile('sh', ['-c', `printf 'hello from the shell' > '${fifo}'`]);
let text = '';
for await (const chunk of reader) text += chunk;
console.log(`read: ${text}`);
fs.rmSync(dir, { recursive: true });
