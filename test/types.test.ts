// What `tsc --strict` users get from the package's declarations: no `any`, typed events and errors.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = path.join(root, 'dist');

function declarations(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? declarations(full) : entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

test('no `any` in the declarations the package ships', () => {
  const found: string[] = [];
  for (const file of declarations(dist)) {
    // Comments and string literals (the access rule 'any') may say "any"; types may not.
    const code = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '')
      .replace(/'[^'\n]*'/g, "''");
    code.split('\n').forEach((line, i) => {
      if (/\bany\b/.test(line)) found.push(`${path.relative(root, file)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(found, []);
});

// Each check fails to compile if the value's type is `any`.
const consumer = `
import {
  type Channel, type InterprocessError, type LocalSocketListener, type MessagePipe, type NamedPipeListener,
  type RpcChannel, type RpcServer, type UnixListener, type UnixSocket, InterprocessError as IE, listen,
  type SendOptions, type Sendable, type SpawnWithOptions,
} from ${JSON.stringify(path.join(dist, 'index.js'))};

type IsAny<T> = 0 extends 1 & T ? true : false;
function typed<T>(_value: T, _check: IsAny<T> extends true ? never : true): void {}

declare const local: LocalSocketListener;
local.on('connection', (socket) => typed(socket, true));
local.on('refused', (credentials) => typed(credentials, true));
local.on('error', (error) => typed(error, true));
declare const unixListener: UnixListener;
unixListener.on('connection', (socket) => typed(socket, true));
declare const pipes: NamedPipeListener<'message'>;
pipes.on('connection', (pipe) => typed(pipe, true));
declare const socket: UnixSocket;
socket.on('message', (message) => { typed(message, true); typed(message.fds, true); typed(message.credentials, true); });
socket.on('error', (error) => typed(error, true));
declare const pipe: MessagePipe;
pipe.on('message', (message) => typed(message, true));
declare const channel: Channel<{ n: number }>;
channel.on('message', (message) => { const n: number = message.n; typed(n, true); });
declare const rpc: RpcChannel;
rpc.on('event', (name, body) => { typed(name, true); typed(body, true); });
declare const server: RpcServer;
server.on('connection', (connection) => typed(connection, true));
server.handle('add', ([a, b]: [number, number]) => a + b);
declare const sendOptions: SendOptions;
typed(sendOptions.fds, true);
declare const spawnOptions: SpawnWithOptions;
typed(spawnOptions.fds[3], true);
// @ts-expect-error a plain object owns no descriptor
export const notADescriptor: Sendable = {};

async function main(): Promise<void> {
  try {
    const listener = await listen('@types-check');
    for await (const connection of listener) typed(connection, true);
  } catch (error) {
    if (error instanceof IE) {
      const e: InterprocessError = error;
      typed(e.code, true);
      typed(e.size, true);
      typed(e.data, true);
      typed(e.from, true);
      typed(e.credentials, true);
    }
  }
}
void main;
`;

test('tsc --strict: listener arguments, iteration and error fields are typed, never any', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'interprocess-types-'));
  try {
    writeFileSync(path.join(dir, 'consumer.ts'), consumer);
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true,
          lib: ['ES2022', 'ESNext.Disposable'], types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')],
          skipLibCheck: false,
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', stdio: 'pipe' });
    } catch (error) {
      assert.fail(`the consumer does not compile:\n${(error as { stdout?: string }).stdout ?? error}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
