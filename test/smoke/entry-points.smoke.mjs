// Every public entry point, from ESM and from CommonJS, and the native addon that came with them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

export const title = 'entry points and the native addon';

/** Public names every build has (the other primitives add theirs). */
const expected = ['InterprocessError', 'LocalSocket', 'LocalSocketAgent', 'LocalSocketListener', 'MessagePipe', 'NamedPipeListener', 'NamedPipeStream', 'ServiceWatchdog', 'SyncLocalSocket', 'authenticate', 'connect', 'connectNamedPipe', 'connectSync', 'createConnection', 'defaultSecurityDescriptor', 'fsName', 'listen', 'listenFds', 'listenNamedPipe', 'namedPipeFromFd', 'namedPipeFromHandle', 'namespaceDirectory', 'nativeStatus', 'notifyReady', 'notifyReloading', 'notifyStatus', 'notifyStopping', 'nsName', 'requestRpcSync', 'sdNotify', 'singleInstance', 'startWatchdog', 'storeFds', 'supportedNameKinds', 'toName', 'watchdogTimeout'];

export async function run(smoke) {
  const esm = await import('interprocess');
  const { api: cjs, pkg } = (await import('./entry-points.cjs')).default;

  await smoke.check("import 'interprocess' (ESM)", () => {
    for (const name of expected) assert.ok(name in esm, `missing export ${name}`);
    return `${Object.keys(esm).length} exports`;
  });
  await smoke.check("require('interprocess') (CommonJS) gives the same module", () => {
    assert.deepEqual(Object.keys(cjs).filter((k) => k !== '__esModule').sort(), Object.keys(esm).sort());
    assert.equal(cjs.listen, esm.listen, 'require and import must share one module instance');
  });
  await smoke.check("'interprocess/package.json' from both", async () => {
    const json = (await import('interprocess/package.json', { with: { type: 'json' } })).default;
    assert.equal(json.name, 'interprocess');
    assert.equal(pkg.version, json.version);
    return `interprocess@${json.version}`;
  });
  await smoke.check('nativeStatus().loaded', () => {
    const status = esm.nativeStatus();
    assert.equal(status.loaded, true, `the addon did not load: ${status.reason}`);
  });

  // Which binary node-gyp-build picked, and that a call reaches it (and libuv through it).
  const packageJson = createRequire(import.meta.url).resolve('interprocess/package.json');
  const packageDir = path.dirname(packageJson);
  const nodeGypBuild = createRequire(packageJson)('node-gyp-build');
  await smoke.check('native addon file', () => path.relative(packageDir, nodeGypBuild.resolve(packageDir)).split(path.sep).join('/'));
  await smoke.check('a native call answers', () => {
    const binding = nodeGypBuild(packageDir);
    assert.equal(binding.napiVersion, 8);
    if (process.platform === 'win32') {
      // Not implemented on Windows yet: the error's code comes from libuv (uv_err_name).
      assert.throws(() => binding.tryLock(0), { code: 'ENOTSUP' });
      return 'tryLock: ENOTSUP, named by libuv';
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoke-'));
    const fd = fs.openSync(path.join(dir, 'lock'), 'w');
    try {
      assert.equal(binding.tryLock(fd), true);
      assert.throws(() => binding.tryLock(-1), { code: 'ERR_INVALID_ARG_TYPE' });
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return 'flock taken';
  });
}
