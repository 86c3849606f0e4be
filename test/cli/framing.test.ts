// --framing line, the default for message addresses: one message per line, escaped so that any
// bytes survive and a line never holds a raw newline; stdin's lines are messages. Against socat,
// and the escape itself on adversarial bytes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { bindDatagram, nsName } from 'interprocess';
import { scratchDir, uniqueName } from '../helpers.js';
import { exitWithin, hasSocat, startCli, waitFor } from './cli-helpers.js';

const { decodeLine, encodeLine, lines } = await import('#internal/cli/framing.js');

const cases: Array<[Buffer, string]> = [
  [Buffer.from('plain text'), 'plain text'],
  [Buffer.from('tab\tstays'), 'tab\tstays'],
  [Buffer.from('two\nlines\r\n'), 'two\\nlines\\r\\n'],
  [Buffer.from('back\\slash \\x41 \\n'), 'back\\\\slash \\\\x41 \\\\n'],
  [Buffer.from([0x00, 0x1b, 0x5b, 0x32, 0x4a, 0x7f]), '\\x00\\x1b[2J\\x7f'],
  [Buffer.from('é ü 日本 🎉'), 'é ü 日本 🎉'],
  [Buffer.from([0xc2, 0x9b, 0x31, 0x6d]), '\\xc2\\x9b1m'], // U+009B, a C1 control (CSI)
  // Not UTF-8: a lone continuation, an overlong '/', a surrogate, past U+10FFFF, a cut sequence.
  [Buffer.from([0x80, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80, 0xe6, 0x97]), '\\x80\\xc0\\xaf\\xed\\xa0\\x80\\xf4\\x90\\x80\\x80\\xe6\\x97'],
  [Buffer.alloc(0), ''],
];

test('the line escape: text reads as itself, anything else escaped, and every message comes back whole', () => {
  for (const [message, line] of cases) {
    assert.equal(encodeLine(message).toString('latin1'), `${Buffer.from(line).toString('latin1')}\n`, line);
    assert.deepEqual(decodeLine(encodeLine(message).subarray(0, -1)), message, line);
  }
  for (let i = 0; i < 2000; i++) {
    const message = randomBytes(i % 64);
    const encoded = encodeLine(message);
    assert.equal(encoded.indexOf(0x0a), encoded.length - 1, 'one newline, at the end');
    assert.ok(!encoded.some((byte) => (byte < 0x20 && byte !== 0x09 && byte !== 0x0a) || byte === 0x7f), 'no control byte reaches the terminal');
    assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(encoded), 'what is written is UTF-8');
    assert.deepEqual(decodeLine(encoded.subarray(0, -1)), message);
  }
  // Reading: a CRLF line end is a line end; a backslash that escapes nothing is itself.
  assert.deepEqual(decodeLine(Buffer.from('a\\qb\\x4\\xZZ\\\r')), Buffer.from('a\\qb\\x4\\xZZ\\'));
});

test('stdin as lines: one message per line, the last one without its newline too, lines cut anywhere', async () => {
  const input = Buffer.from('one\r\n\ntwo\\nthree\nlast');
  for (let cut = 0; cut <= input.length; cut++) {
    const messages: Buffer[] = [];
    for await (const message of lines([input.subarray(0, cut), input.subarray(cut)])) messages.push(message);
    assert.deepEqual(messages.map(String), ['one', '', 'two\nthree', 'last'], `cut at ${cut}`);
  }
  await assert.rejects(async () => {
    for await (const message of lines([Buffer.alloc(20, 0x61), Buffer.alloc(20, 0x61)], 32)) void message;
  }, { code: 'ERR_OUT_OF_RANGE', message: /--framing raw/ });
});

const unixSkip = process.platform === 'win32' ? 'no Unix datagram sockets on Windows' : false;

test('listen dgram: prints each datagram socat sends on a line of its own', { timeout: 60_000, skip: unixSkip || (hasSocat ? false : 'socat is not installed') }, async (t) => {
  const socketPath = path.join(scratchDir(t), 'd.sock');
  const listener = startCli(['listen', `dgram:${socketPath}`], ['ignore', 'pipe', 'pipe']);
  t.after(() => listener.kill());
  await waitFor(listener.stderr!, /receiving datagrams/);
  let text = '';
  listener.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  for (const [message] of cases.filter(([m]) => m.length > 0)) {
    // socat sends what one read of its stdin gives as one datagram.
    const sender = spawn('socat', ['-u', '-', `UNIX-SENDTO:${socketPath}`], { stdio: ['pipe', 'ignore', 'inherit'] });
    sender.stdin!.end(message);
    assert.equal(await exitWithin(sender, 20_000), 0);
  }
  const expected = cases.filter(([m]) => m.length > 0).map(([, line]) => `${Buffer.from(line).toString('latin1')}\n`).join('');
  // Datagrams have no end to wait for: wait (boundedly) for as many bytes as expected.
  for (let waited = 0; text.length < expected.length && waited < 20_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  assert.equal(text, expected);
  listener.kill('SIGTERM');
  assert.equal(await exitWithin(listener, 20_000), 0);
});

test('connect dgram: sends each line of stdin as one datagram, escapes decoded', { timeout: 60_000, skip: unixSkip }, async (t) => {
  const name = uniqueName();
  const receiver = await bindDatagram(nsName(name));
  t.after(() => receiver.close());
  const connector = startCli(['connect', `dgram:@${name}`], ['pipe', 'inherit', 'inherit']);
  t.after(() => connector.kill());
  connector.stdin!.end('first\nsecond\r\n\nback\\\\slash \\x00\\xff\n\\n is a newline\nlast, with no newline');
  assert.equal(await exitWithin(connector, 20_000), 0);
  const got: Buffer[] = [];
  for (let i = 0; i < 6; i++) got.push((await receiver.receive())!.data);
  assert.deepEqual(got, [Buffer.from('first'), Buffer.from('second'), Buffer.alloc(0), Buffer.from('back\\slash \x00\xff', 'latin1'), Buffer.from('\n is a newline'), Buffer.from('last, with no newline')]);
});

test('a line too long to be a message fails with what to do', { timeout: 60_000, skip: unixSkip }, async (t) => {
  const name = uniqueName();
  const receiver = await bindDatagram(nsName(name));
  t.after(() => receiver.close());
  const connector = startCli(['connect', `dgram:@${name}`], ['pipe', 'ignore', 'pipe']);
  t.after(() => connector.kill());
  let errors = '';
  connector.stderr!.on('data', (text) => (errors += text));
  connector.stdin!.on('error', () => {}); // it may stop reading first
  connector.stdin!.end(Buffer.alloc(300 * 1024, 0x61));
  assert.equal(await exitWithin(connector, 20_000), 1);
  assert.match(errors, /ERR_OUT_OF_RANGE: .*--framing raw/);
});
