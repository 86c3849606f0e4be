// Every example shown by --help: each parses as a command line, every command shows at least one,
// and each runs here where it can: listen examples against the connect example of the same
// address (the listener then gives out exactly what the connector was given), the rest alone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readAll, scratchDir, uniqueName } from '../helpers.js';
import { cli, exitWithin, waitFor } from './cli-helpers.js';

const { parseCommandLine } = await import('#internal/cli/args.js');
const { HELP } = await import('#internal/cli/help.js');

interface Example {
  line: string;
  argv: string[];
  stdin?: string;
  stdout?: string;
  pipedFrom?: string;
}

/** The examples of a help text: the lines after "Examples:", as `interprocess ARGS [< IN] [> OUT]`, maybe after `CMD |`, maybe with a # comment. */
function examplesOf(help: string): Example[] {
  const section = help.split('\nExamples:\n')[1];
  assert.ok(section, 'a help text ends with its examples');
  return section.split('\n').map((raw) => {
    const line = raw.replace(/\s+#\s.*$/, '').trim();
    const match = /^(?:(.+?) \| )?interprocess((?: [^<>|\s]+)*)(?: < (\S+))?(?: > (\S+))?$/.exec(line);
    assert.ok(match, `an example in the expected form: ${raw}`);
    return { line, argv: match[2]!.trim().split(' ').filter(Boolean), ...(match[3] ? { stdin: match[3] } : {}), ...(match[4] ? { stdout: match[4] } : {}), ...(match[1] ? { pipedFrom: match[1] } : {}) };
  });
}

test('every command shows examples in its --help, and each parses as a command line', () => {
  for (const [command, help] of Object.entries(HELP)) {
    const examples = examplesOf(help);
    assert.ok(examples.length > 0, command);
    if (command !== 'main') assert.ok(examples.some((e) => e.argv[0] === command), `${command}'s help shows ${command}`);
    for (const example of examples) {
      // A socket file path is not a name on Windows (there it must be \\.\pipe\NAME).
      if (process.platform === 'win32' && /^(dgram:|seqpacket:)?\/tmp\//.test(example.argv[1] ?? '')) {
        assert.throws(() => parseCommandLine(example.argv), /not a Windows pipe path/, example.line);
        continue;
      }
      assert.doesNotThrow(() => parseCommandLine(example.argv), example.line);
    }
  }
});

const all = Object.values(HELP).flatMap(examplesOf);
const unique = <T>(items: T[]) => [...new Map(items.map((item) => [JSON.stringify(item), item])).values()];
const alone = unique(all.filter((e) => e.argv[0] !== 'listen' && e.argv[0] !== 'connect' && e.argv[0] !== 'bench'));
const listens = unique(all.filter((e) => e.argv[0] === 'listen'));
const connects = unique(all.filter((e) => e.argv[0] === 'connect'));

for (const example of alone) {
  test(`the example runs: ${example.line}`, { timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, [cli, ...example.argv], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = readAll(child.stdout!);
    assert.equal(await exitWithin(child, 30_000), 0);
    assert.ok((await out).length > 0, 'it prints something');
  });
}

// Each listen example with the connect example of its address, or a plain `connect ADDRESS --wait`.
const pairs: Array<[Example, Example]> = [
  ...listens.map((l): [Example, Example] => [l, connects.find((c) => c.argv[1] === l.argv[1]) ?? { line: '', argv: ['connect', l.argv[1]!, '--wait'] }]),
  ...connects.filter((c) => !listens.some((l) => l.argv[1] === c.argv[1])).map((c): [Example, Example] => [{ line: '', argv: ['listen', c.argv[1]!] }, c]),
];
const skipOf = (address: string) => {
  if (process.platform === 'win32') return 'the examples are Unix addresses';
  if (address.startsWith('seqpacket:') && process.platform !== 'linux') return 'no seqpacket sockets here';
  return false;
};

for (const [listen, connect] of pairs) {
  test(`the examples run together: ${listen.line || listen.argv.join(' ')} / ${connect.line || connect.argv.join(' ')}`, { timeout: 60_000, skip: skipOf(listen.argv[1]!) }, async (t) => {
    const dir = scratchDir(t);
    // The example's names, made this test's own.
    const name = uniqueName();
    const own = (arg: string) => arg.replace(/^(\w+:)?\/tmp\//, `$1${dir}/`).replace(/@my-app$/, `@${name}`);
    const file = path.join(dir, 'file.bin');
    fs.writeFileSync(file, randomBytes(64 * 1024));
    const out = listen.stdout ? fs.openSync(path.join(dir, listen.stdout), 'w') : 'pipe';
    const listener = spawn(process.execPath, [cli, ...listen.argv.map(own)], { cwd: dir, stdio: ['ignore', out, 'pipe'] });
    if (typeof out === 'number') fs.closeSync(out); // the child has its copy
    t.after(() => listener.kill());
    const printed = listener.stdout ? readAll(listener.stdout) : null;
    let got = 0;
    listener.stdout?.on('data', (chunk: Buffer) => (got += chunk.length));
    // A FIFO reader says nothing (and the writer waits for it); the others say when they are ready.
    if (!listen.argv[1]!.startsWith('fifo:')) await waitFor(listener.stderr!, /listening on|receiving datagrams on/);
    const input = connect.pipedFrom ? Buffer.from(`${/^echo (.*)$/.exec(connect.pipedFrom)![1]}\n`) : connect.stdin ? fs.readFileSync(path.join(dir, connect.stdin)) : Buffer.alloc(0);
    const connector = spawn(process.execPath, [cli, ...connect.argv.map(own)], { cwd: dir, stdio: ['pipe', 'ignore', 'inherit'] });
    t.after(() => connector.kill());
    connector.stdin!.end(input);
    assert.equal(await exitWithin(connector, 30_000), 0, connect.line);
    if (listen.argv[1]!.startsWith('dgram:')) {
      // A datagram receiver runs until told to stop, once what was sent has arrived.
      for (let waited = 0; got < input.length && waited < 30_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      listener.kill('SIGTERM');
    }
    assert.equal(await exitWithin(listener, 30_000), 0, listen.line);
    const output = printed ? await printed : fs.readFileSync(path.join(dir, listen.stdout!));
    assert.deepEqual(output, input, 'the listener gives out what the connector was given');
  });
}
