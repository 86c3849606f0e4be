// The package's install script, for when npm runs it (npm 11 runs it only for approved packages).
// node-gyp-build keeps the prebuilt binary if it loads here, and otherwise builds from source
// with node-gyp. A failed source build must not fail the install: the addon is optional at run
// time (what Node core can do still works; native-only calls throw ERR_INTERPROCESS_NATIVE).
'use strict';
const { spawnSync } = require('node:child_process');

const result = spawnSync(process.execPath, [require.resolve('node-gyp-build/bin.js')], { stdio: 'inherit' });
if (result.status !== 0) {
  console.warn(
    'interprocess: no native addon for this platform (the build above failed). Everything Node core ' +
      'can do still works; native-only features throw ERR_INTERPROCESS_NATIVE. To build it, install ' +
      'python3, make and a C compiler, then run `npm rebuild interprocess`.',
  );
}
