#!/usr/bin/env bash
# Installs the Debian packages ovis.cpp needs (idempotent) and builds it into ./build.
# Usage: scripts/setup.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
# libcpp-httplib-dev: `ovis serve`; chromium: the web-UI test (tests/e2e).
PKGS="build-essential cmake ninja-build pkg-config libdnnl-dev nlohmann-json3-dev libpcre2-dev
      libicu-dev libpng-dev libjpeg62-turbo-dev libcli11-dev libgtest-dev libbenchmark-dev
      libcurl4-openssl-dev libssl-dev libcpp-httplib-dev chromium
      clang libclang-rt-14-dev libomp-dev"  # clang + libFuzzer/sanitizer runtimes: scripts/fuzz.sh
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
# Node.js and npm (playwright-core for tests/e2e, @huggingface/gguf for tests/gguf_reader) may
# come from elsewhere; Debian's only when absent.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
# playwright-core (drives Debian's chromium in tests/e2e), pinned by tests/e2e/package-lock.json.
want=$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' tests/e2e/package.json)
have=$(sed -n 's/^  "version": "\(.*\)".*/\1/p' tests/e2e/node_modules/playwright-core/package.json 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
fi
# The third-party GGUF reader the tests open our files with (npm, pinned in package.json).
if [ ! -d tests/gguf_reader/node_modules/@huggingface/gguf ]; then
  (cd tests/gguf_reader && npm install --no-audit --no-fund --loglevel=error)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
ninja -C build
