// The json codec's limits (docs/channel.md): what a peer's frame can hold, and values JSON has no
// text for, which are refused with a typed error while the channel stays usable.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Channel, pipe } from 'interprocess';

function channelPair(): [Channel<Buffer>, Channel] {
  const up = pipe();
  const down = pipe();
  return [new Channel<Buffer>({ readable: down.receiver, writable: up.sender }, { codec: 'raw' }), new Channel({ readable: up.receiver, writable: down.sender })];
}

test('a value nested a million levels deep parses; sending it, a cycle or a BigInt rejects with ERR_INVALID_ARG_VALUE and the channel goes on', async () => {
  const [raw, json] = channelPair();
  const depth = 1_000_000;
  await raw.send(Buffer.from('['.repeat(depth) + ']'.repeat(depth)));
  const it = json[Symbol.asyncIterator]();
  let value = (await it.next()).value as unknown[];
  let levels = 1;
  while (value.length > 0) {
    value = value[0] as unknown[];
    levels++;
  }
  assert.equal(levels, depth);

  let deep: unknown[] = [];
  for (let i = 0; i < 100_000; i++) deep = [deep];
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  for (const bad of [deep, cycle, { n: 1n }]) {
    await assert.rejects(json.send(bad), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_INVALID_ARG_VALUE');
      assert.match(error.message, /has no JSON text \(json codec\)/);
      return true;
    });
  }
  await json.send({ still: 'usable' });
  assert.equal(String((await raw[Symbol.asyncIterator]().next()).value), '{"still":"usable"}');
  raw.destroy();
  json.destroy();
});

test('a "__proto__" key from a peer is an own property, never a prototype; invalid UTF-8 is replaced', async () => {
  const [raw, json] = channelPair();
  await raw.send(Buffer.from('{"__proto__":{"polluted":1}}'));
  await raw.send(Buffer.from([0x22, 0xff, 0x22]));
  const it = json[Symbol.asyncIterator]();
  const object = (await it.next()).value as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(object), Object.prototype);
  assert.deepEqual(Object.keys(object), ['__proto__']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal((await it.next()).value, '\ufffd');
  raw.destroy();
  json.destroy();
});
