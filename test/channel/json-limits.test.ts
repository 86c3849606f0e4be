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

test('a value nested a million levels deep parses; a cycle or a BigInt (and, where V8 cannot stringify it, a deep value) rejects with ERR_INVALID_ARG_VALUE and the channel goes on', async (t) => {
  const [raw, json] = channelPair();
  t.after(() => {
    raw.destroy();
    json.destroy();
  });
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
  const typedRefusal = (error: Error & { code?: string }) => {
    assert.equal(error.code, 'ERR_INVALID_ARG_VALUE');
    assert.match(error.message, /has no JSON text \(json codec\)/);
    return true;
  };
  for (const bad of [cycle, { n: 1n }]) await assert.rejects(json.send(bad), typedRefusal);
  const incoming = raw[Symbol.asyncIterator]();
  // V8 before Node 26 overflows its stack stringifying 100,000 levels (a typed refusal); Node 26's
  // stringifies it. Either way the channel goes on.
  const deepSent = await json.send(deep).then(() => true, (error: Error & { code?: string }) => typedRefusal(error) && false);
  if (deepSent) assert.equal(String((await incoming.next()).value).length, 2 * (100_000 + 1)); // 100,000 arrays around an empty one
  await json.send({ still: 'usable' });
  assert.equal(String((await incoming.next()).value), '{"still":"usable"}');
});

test('a "__proto__" key from a peer is an own property, never a prototype; invalid UTF-8 is replaced', async (t) => {
  const [raw, json] = channelPair();
  t.after(() => {
    raw.destroy();
    json.destroy();
  });
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
