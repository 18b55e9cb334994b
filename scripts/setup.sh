#!/usr/bin/env bash
# Installs the Debian packages ovis.cpp needs (idempotent) and builds it into ./build.
# Usage: scripts/setup.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
# clang + libclang-rt-dev: the libFuzzer targets (scripts/fuzz.sh).
PKGS="build-essential cmake ninja-build pkg-config libdnnl-dev nlohmann-json3-dev libpcre2-dev
      libicu-dev libpng-dev libjpeg62-turbo-dev libcli11-dev libgtest-dev libbenchmark-dev
      libcpp-httplib-dev clang libclang-rt-dev"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
ninja -C build
