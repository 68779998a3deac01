#!/bin/sh
# Installs the pinned Node.js release (the official linux tarball for this machine's CPU) under $PREFIX
# (default /usr/local: the units run /usr/local/bin/node). Run as root from the EC2 user data.
#
# Checksum: the tarball must match its line in the release's SHASUMS256.txt, fetched from the same
# release directory over HTTPS at install time. The hash is not pinned here; what is pinned is the
# version. A missing line or a mismatch installs nothing and exits non-zero.
#
# NODE_DIST (default https://nodejs.org/dist) points the download at a mirror (or a test's file:// folder).
set -eu

NODE_VERSION=24.22.3
NODE_DIST=${NODE_DIST:-https://nodejs.org/dist}
PREFIX=${PREFIX:-/usr/local}

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *)
    echo "install-node: no Node.js $NODE_VERSION build for CPU $(uname -m)." >&2
    exit 1
    ;;
esac

if [ -x "$PREFIX/bin/node" ] && [ "$("$PREFIX/bin/node" --version)" = "v$NODE_VERSION" ]; then
  exit 0
fi

tarball="node-v$NODE_VERSION-linux-$arch.tar.xz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 5 -o "$work/SHASUMS256.txt" "$NODE_DIST/v$NODE_VERSION/SHASUMS256.txt"
curl -fsSL --retry 5 -o "$work/$tarball" "$NODE_DIST/v$NODE_VERSION/$tarball"
grep " $tarball\$" "$work/SHASUMS256.txt" >"$work/expected" || {
  echo "install-node: $tarball is not listed in SHASUMS256.txt of Node.js $NODE_VERSION; nothing installed." >&2
  exit 1
}
(cd "$work" && sha256sum -c --status expected) || {
  echo "install-node: $tarball does not match its SHA-256 in SHASUMS256.txt; nothing installed." >&2
  exit 1
}
mkdir -p "$PREFIX"
tar -xJf "$work/$tarball" -C "$PREFIX" --strip-components=1 --no-same-owner
echo "install-node: Node.js $("$PREFIX/bin/node" --version) installed in $PREFIX."
