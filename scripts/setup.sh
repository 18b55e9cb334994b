#!/usr/bin/env bash
# Installs the Debian packages ovis.cpp needs (idempotent) and builds it into ./build.
# Usage: scripts/setup.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="build-essential cmake ninja-build pkg-config libdnnl-dev nlohmann-json3-dev libpcre2-dev
      libicu-dev libpng-dev libjpeg62-turbo-dev libcli11-dev libgtest-dev libbenchmark-dev
      libcurl4-openssl-dev libssl-dev libcpp-httplib-dev
      clang libclang-rt-14-dev libomp-dev"  # clang + libFuzzer/sanitizer runtimes: scripts/fuzz.sh
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
# node + npm for the third-party GGUF reader test (any install of them will do).
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
# The third-party GGUF reader the tests open our files with (npm, pinned in package.json).
if [ ! -d tests/gguf_reader/node_modules/@huggingface/gguf ]; then
  (cd tests/gguf_reader && npm install --no-audit --no-fund --loglevel=error)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
ninja -C build
