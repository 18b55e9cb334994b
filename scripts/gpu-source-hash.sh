#!/usr/bin/env bash
# Prints one hash of every file that goes into the binaries (CMake files, headers, sources, the
# tests), without git, so scripts/gpu-check.sh can tell on the GPU machine whether the prebuilt
# binaries of .gpu/ (scripts/gpu-bundle.sh) were built from this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
find CMakeLists.txt cmake include src tools tests -type f \
  ! -path 'tests/fixtures/*' ! -path 'tests/data/*' ! -path 'tests/fuzz/corpus/*' -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
