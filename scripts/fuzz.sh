#!/usr/bin/env bash
# Runs one libFuzzer target for a while: scripts/fuzz.sh TARGET SECONDS [libFuzzer args...]
# TARGET is a tests/fuzz/fuzz_<TARGET>.cpp name (json_request, data_url, multipart). Builds
# build-fuzz/ with clang++ (-DOVIS_FUZZ=ON, ASan+UBSan) and fuzzes from a scratch copy of the
# committed seed corpus (tests/fuzz/corpus/TARGET), so new inputs do not pile up in the tree.
# Crashes are written to build-fuzz/crashes/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer args...]}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer args...]}
shift 2
if [ ! -f "tests/fuzz/fuzz_${target}.cpp" ]; then
  echo "error: no fuzz target tests/fuzz/fuzz_${target}.cpp" >&2
  exit 2
fi
if [ ! -f build-fuzz/build.ninja ]; then
  CXX=clang++ CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOVIS_FUZZ=ON -DOVIS_SANITIZE=ON -DOVIS_BUILD_TESTS=OFF -DOVIS_NATIVE=OFF \
    ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER}
fi
ninja -C build-fuzz "fuzz_${target}"
work=build-fuzz/corpus/${target}
crashes=build-fuzz/crashes/${target}
mkdir -p "$work" "$crashes"
cp -n tests/fuzz/corpus/"${target}"/* "$work"/ 2>/dev/null || true
exec ./build-fuzz/"fuzz_${target}" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$crashes/" -timeout=25 -rss_limit_mb=4096 "$@" "$work"
