// `conn`: a LocalSocket connected to a listener of this process; neither keeps the process alive.
import os from 'node:os';
import path from 'node:path';
import { connect, listen } from 'interprocess';

const file = path.join(os.tmpdir(), 'context.sock');
const listener = await listen(file);
listener.on('connection', (conn) => conn.unref());
listener.unref();
globalThis.conn = await connect(file);
globalThis.conn.unref();
