// The C core's house rules (native/common/addon.h), checked on the sources so that they hold as
// files are added: each file has one prefix, its concept, on every function another file or JS
// calls (ipc_ only for common/'s shared helpers), no file takes another's prefix even for a static
// helper, and no line runs past 130 columns.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const native = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'native');

/** Each source file's prefix. A new file must be added here, with its own prefix. */
const prefixes: Record<string, string> = {
  'common/addon.c': 'ipc_',
  'common/errors.c': 'ipc_',
  'common/args.c': 'ipc_',
  'common/watcher.c': 'watcher_',
  'common/slab.c': 'slab_',
  'unix/os.c': 'os_',
  'unix/abstract.c': 'abstract_',
  'unix/credentials.c': 'credentials_',
  'unix/fd.c': 'fd_',
  'unix/lock.c': 'lock_',
  'unix/usocket.c': 'usock_',
  'unix/message.c': 'msg_',
  'unix/send.c': 'send_',
  'unix/receive.c': 'receive_',
  'unix/sync.c': 'sync_',
  'unix/shm.c': 'shm_',
  'windows/os.c': 'os_',
  'windows/io.c': 'io_',
  'windows/operation.c': 'op_',
  'windows/pipe.c': 'pipe_',
  'windows/npipe.c': 'np_',
  'windows/sync.c': 'sync_',
  'windows/handle.c': 'hnd_',
};
const allPrefixes = [...new Set(Object.values(prefixes))];

function sources(): string[] {
  return fs
    .readdirSync(native, { recursive: true, encoding: 'utf8' })
    .filter((file) => /\.[ch]$/.test(file))
    .map((file) => file.split(path.sep).join('/'))
    .sort();
}

/** The functions defined at file scope: `[static] type name(` at the start of a line, up to `{`. */
function definitions(text: string): { name: string; isStatic: boolean; line: number }[] {
  const found: { name: string; isStatic: boolean; line: number }[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const m = /^(static\s+)?(?:[A-Za-z_][\w ]*?[\s*]+)(?:CALLBACK\s+|WINAPI\s+)?\**([A-Za-z_]\w*)\(/.exec(line);
    if (m === null || /^(typedef|return|if|else|for|while|do|switch)\b/.test(line) || line.trimEnd().endsWith(';')) return;
    // A definition ends its signature with `{` (maybe on a following line), a declaration with `;`.
    const rest = lines.slice(i, i + 4).join('\n');
    const end = rest.search(/[{;]/);
    if (end < 0 || rest[end] !== '{') return;
    found.push({ name: m[2], isStatic: m[1] !== undefined, line: i + 1 });
  });
  return found;
}

test('every C source file has a prefix of its own in the rule', () => {
  const files = sources().filter((file) => file.endsWith('.c'));
  assert.deepEqual(files, Object.keys(prefixes).sort(), 'a new file: give it its concept as prefix (native/common/addon.h)');
});

test("each file's shared functions carry its prefix, and no file borrows another's", () => {
  const wrong: string[] = [];
  for (const file of sources().filter((f) => f.endsWith('.c'))) {
    const own = prefixes[file];
    for (const { name, isStatic, line } of definitions(fs.readFileSync(path.join(native, file), 'utf8'))) {
      if (name === 'NAPI_MODULE_INIT') continue;
      const borrowed = allPrefixes.find((p) => p !== own && name.startsWith(p) && !name.startsWith(own));
      if (!isStatic && !name.startsWith(own)) wrong.push(`${file}:${line} ${name} is shared but lacks ${own}`);
      else if (borrowed !== undefined) wrong.push(`${file}:${line} ${name} takes ${borrowed}, another file's prefix`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('the rule sees the definitions it checks', () => {
  // Guards the parser above: a rule that finds nothing would pass on anything.
  const usocket = definitions(fs.readFileSync(path.join(native, 'unix', 'usocket.c'), 'utf8')).map((d) => d.name);
  for (const name of ['usock_open', 'usock_sockaddr_un', 'usock_init', 'our_type']) assert.ok(usocket.includes(name), name);
  const io = definitions(fs.readFileSync(path.join(native, 'windows', 'io.c'), 'utf8')).map((d) => d.name);
  for (const name of ['io_on_signaled', 'io_wait_worker', 'io_get', 'on_teardown']) assert.ok(io.includes(name), name);
});

test('no line of the C core runs past 130 columns', () => {
  const long: string[] = [];
  for (const file of sources()) {
    fs.readFileSync(path.join(native, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (line.length > 130) long.push(`${file}:${i + 1} (${line.length})`);
      });
  }
  assert.deepEqual(long, []);
});
