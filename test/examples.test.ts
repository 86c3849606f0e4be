// Every example runs, so none can rot: each must exit 0 and print what its comments promise.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');
const expected: Record<string, RegExp[]> = {
  'local-socket-echo.js': [/^listening on /m, /^connection from pid \d+$/m, /^client got: hello over a local socket$/m],
  'pipe-to-child.js': [/^child read: a pipe made by interprocess$/m, /^child exited with 0$/m],
  'fifo.js': [/^read: hello from the shell$/m],
  'rpc.js': [/^client: 2 \+ 3 = 5$/m, /^client got event news: hello to every client$/m, /^server closed$/m],
  'signals.js': [/^child: got SIGTERM, shutting down cleanly$/m, /^parent: child exited with code 0, signal null$/m],
  'local-socket-file.js': [/^socket file mode: 600$/m, /^client got: welcome$/m, /^socket file removed: true$/m],
  'local-socket-commonjs.cjs': [/^commonjs client got: pong$/m],
  'unix-sockets.js': [/^server got: hi \(from pid \d+\)$/m, /^client got: hello \d+$/m, /^received "a file for you" with a descriptor: \/\/ Unix datagram/m, /^peer pid \d+$/m],
};

test('every example has its expected output listed here', () => {
  assert.deepEqual(readdirSync(examples).filter((f) => /\.[cm]?js$/.test(f)).sort(), Object.keys(expected).sort());
});

for (const [file, patterns] of Object.entries(expected)) {
  test(`example ${file} runs`, { timeout: 20_000 }, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(examples, file)], { timeout: 15_000 });
    for (const pattern of patterns) assert.match(stdout, pattern);
  });
}
