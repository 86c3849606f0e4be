// `listener`: a LocalSocketListener on a socket file, closed after 300 ms.
import os from 'node:os';
import path from 'node:path';
import { listen } from 'interprocess';

globalThis.listener = await listen(path.join(os.tmpdir(), 'context.sock'));
setTimeout(() => void globalThis.listener.close(), 300);
