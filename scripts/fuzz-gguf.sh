#!/bin/sh
# libFuzzer run of the GGUF header parser (tests/fuzz/fuzz_gguf.cpp) with ASan and UBSan.
# Usage: scripts/fuzz-gguf.sh [RUNS] [BUILD_DIR]   (defaults: 1000000 runs, build-fuzz)
# Needs clang with libFuzzer (Debian: clang). New inputs go to BUILD_DIR/corpus (the committed
# seeds in tests/fuzz/corpus/gguf are only read); crashes are written to BUILD_DIR/crash-*.
set -eu
RUNS=${1:-1000000}
OUT=${2:-build-fuzz}
cd "$(dirname "$0")/.."
mkdir -p "$OUT/corpus"
CXX=${CXX_FUZZ:-clang++}
# Only the parser's own sources: the GGUF reader and the core tensor types.
"$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc -Iinclude tests/fuzz/fuzz_gguf.cpp src/io/gguf.cpp src/core/*.cpp -fopenmp \
  -o "$OUT/fuzz_gguf"
"$OUT/fuzz_gguf" -runs="$RUNS" -max_len=4096 -print_final_stats=1 -error_exitcode=1 \
  -artifact_prefix="$OUT/" "$OUT/corpus" tests/fuzz/corpus/gguf
