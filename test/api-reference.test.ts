// docs/api.md's reference is generated from the package's declarations: it must match them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('docs/api.md lists every export with the signatures dist/index.d.ts declares', () => {
  assert.doesNotThrow(() => execFileSync(process.execPath, [path.join(root, 'scripts', 'api-reference.mjs'), '--check'], { stdio: 'pipe' }));
});
