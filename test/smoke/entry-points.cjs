// CommonJS users: `require('interprocess')` (require(esm), Node 20.19+ and 22.12+).
'use strict';
module.exports = { api: require('interprocess'), pkg: require('interprocess/package.json') };
