// The README's RPC idiom type-checks under --strict (this file is compiled by tsconfig.test.json,
// so a type error fails the suite) and runs: handlers may type their own method's body and reply.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RequestHandler, connectRpc, nsName, serveRpc } from 'interprocess';
import { uniqueName } from '../helpers.js';

test("handle('add', ([a, b]) => a + b) compiles and answers, untyped and typed per method", async () => {
  const name = nsName(uniqueName());
  await using server = await serveRpc(name);
  server.handle('add', ([a, b]) => a + b);
  server.handle('concat', ([a, b]: [string, string]) => a + b);
  server.handle('len', async ({ text }: { text: string }) => text.length);
  const rpc = await connectRpc(name, { requestTimeout: 10_000 });
  rpc.handle('add', ([a, b]) => a + b);
  assert.equal(await rpc.request('add', [2, 3]), 5);
  assert.equal(await rpc.request('concat', ['a', 'b']), 'ab');
  assert.equal(await rpc.request<number>('len', { text: 'four' }), 4);

  // A channel of a declared type: handlers are checked against it.
  await using typed = await serveRpc<number | number[]>(nsName(uniqueName()));
  typed.handle('sum', (list) => (Array.isArray(list) ? list.reduce((x, y) => x + y, 0) : list));
  typed.handle('pair', ([a, b]: number[]) => [b!, a!]);
  // @ts-expect-error a reply that is not a number | number[]
  typed.handle('bad', () => 'text');
  // @ts-expect-error a body type that is not part of number | number[]
  typed.handle('worse', (body: string) => body.length);
  const handler: RequestHandler<[number, number], number> = ([a, b]) => a * b;
  server.handle('mul', handler);
  assert.equal(await rpc.request('mul', [6, 7]), 42);
  await rpc.close();
});
