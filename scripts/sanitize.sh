#!/usr/bin/env bash
# The Unix suites against an AddressSanitizer + UndefinedBehaviorSanitizer build of the addon.
#
# Builds native/ with -fsanitize=address,undefined into build/sanitize/ (build/Release is left
# alone), then runs the compiled Unix test files (npm test compiles them; this script compiles
# them too) with that build loaded in every process: the tests, their fixtures, their workers.
# Node is not built with ASan, so libasan is preloaded (LD_PRELOAD) and INTERPROCESS_ADDON_PATH
# points src/native/addon.ts at the sanitized binary; both are inherited by child processes.
# Every report is written to a log file (log_path) and is fatal to its process: the script fails
# if any report was written, even one from a child process whose test passed anyway.
#
# Usage: bash scripts/sanitize.sh [test file substring ...]   (default: the Unix suites)
# Needs gcc (or CC=clang) with libasan and libubsan; .ci/run runs it (Linux only).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" != Linux ]; then
  echo "scripts/sanitize.sh: Linux only (it preloads libasan into Node)" >&2
  exit 1
fi

out=build/sanitize
cc="${CC:-gcc}"
libasan="$("$cc" -print-file-name=libasan.so)"
libasan="$(readlink -f "$libasan")"
if [ ! -f "$libasan" ]; then
  echo "scripts/sanitize.sh: $cc has no libasan.so (Debian: apt-get install libasan8 libubsan1, or gcc)" >&2
  exit 1
fi

echo "=== building the addon with ASan and UBSan into $out/"
rm -rf "$out"
mkdir -p "$out"
cp -r binding.gyp native "$out/"
# -fno-sanitize-recover: a UBSan finding aborts at once, like an ASan one (and UBSAN_OPTIONS
# below would halt it too). -O1 keeps the stacks readable.
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
if ! CC="$cc" CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" npx node-gyp rebuild --directory="$out" >"$out.log" 2>&1; then
  cat "$out.log"
  echo "scripts/sanitize.sh: the sanitized build failed" >&2
  exit 1
fi
addon="$PWD/$out/build/Release/interprocess.node"
if ! nm -D "$addon" | grep __asan_report >/dev/null; then  # not -q: with pipefail, an early exit would SIGPIPE nm
  echo "scripts/sanitize.sh: $addon is not instrumented (no __asan_report symbols)" >&2
  exit 1
fi

echo "=== compiling src/ and test/"
npx tsc -p tsconfig.json && npx tsc -p tsconfig.test.json || exit 1

logs="$(mktemp -d "${TMPDIR:-/tmp}/ipc-sanitize-XXXXXX")"
trap 'rm -rf "$logs"' EXIT
export INTERPROCESS_ADDON_PATH="$addon"
# Tests scale their memory bounds for ASan's overhead (test/helpers.ts, sanitizerScale).
export INTERPROCESS_SANITIZER=1
# Peers that are not Node (python3, socat) run without libasan: they do not load the addon, and
# Python is slow enough under it to miss the tests' timeouts. A shim first on PATH drops it.
mkdir -p "$logs/bin"
for program in python3 socat; do
  real="$(command -v "$program")" || continue
  printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' "$real" >"$logs/bin/$program"
  chmod +x "$logs/bin/$program"
done
export PATH="$logs/bin:$PATH"
export LD_PRELOAD="$libasan${LD_PRELOAD:+:$LD_PRELOAD}"
# detect_leaks=0: Node itself does not free everything at exit. handle_segv=0 and
# allow_user_segv_handler=1: V8 and Node handle SIGSEGV themselves (WebAssembly bounds checks).
# quarantine_size_mb=32 (default 256): freed Buffers held in quarantine would pass the fault
# suite's memory bounds.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:detect_stack_use_after_return=0:quarantine_size_mb=32:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"

# The sanitized addon is the one that loads (the hook works, and the runtime accepts Node).
if ! node --input-type=module -e "
  import fs from 'node:fs';
  const { nativeStatus } = await import('./dist/index.js');
  const status = nativeStatus();
  if (!status.loaded) throw new Error('the addon did not load: ' + status.reason);
  if (!fs.readFileSync('/proc/self/maps', 'utf8').includes(process.env.INTERPROCESS_ADDON_PATH)) throw new Error('the sanitized addon is not the one loaded');
  console.log('the sanitized addon loads: ' + process.env.INTERPROCESS_ADDON_PATH);
"; then
  cat "$logs"/* 2>/dev/null
  echo "scripts/sanitize.sh: the sanitized addon does not load under Node" >&2
  exit 1
fi

if [ $# -gt 0 ]; then
  suites=("$@")
else
  suites=(test/unix-socket/ test/native/ test/pipe/ test/fifo/ test/local-socket/ test/channel/ test/fault/ test/signal/
          test/sync/ test/shared-memory/ test/service/ test/security/ test/single-instance/)
fi
echo "=== the Unix suites under ASan and UBSan: ${suites[*]}"
# The sanitizers make everything slower: 3x the usual file timeout.
INTERPROCESS_PACKAGE_TESTS=0 INTERPROCESS_TEST_TIMEOUT=360000 node test/run.js "${suites[@]}"
status=$?

reports=$(find "$logs" -maxdepth 1 -type f \( -name 'asan.*' -o -name 'ubsan.*' \) | sort)
if [ -n "$reports" ]; then
  for report in $reports; do
    printf '\n=== sanitizer report %s\n' "$(basename "$report")"
    cat "$report"
  done
  echo "scripts/sanitize.sh: FAILED: the sanitizers reported $(echo "$reports" | wc -l) finding(s) above" >&2
  exit 1
fi
if [ $status -ne 0 ]; then
  echo "scripts/sanitize.sh: FAILED: the tests failed under the sanitizers (exit $status)" >&2
  exit $status
fi
echo "scripts/sanitize.sh: no sanitizer report, every test passed"
