#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers of untrusted input (tests/fuzz), with libFuzzer + ASan +
# UBSan from Debian's clang. Configures ./build-fuzz (clang, -DOVIS_FUZZ=ON) on first use.
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]   fuzz one target for SECONDS
#   scripts/fuzz.sh --replay                              build every target, replay every corpus
#   scripts/fuzz.sh --list                                the targets
#
# TARGET is one of: config preprocessor_config safetensors gguf tokenizer_load tokenizer_encode
# image, and the server's json_request multipart data_url.
# New inputs go to build-fuzz/fuzz-corpus/TARGET (the committed seeds in tests/fuzz/corpus stay
# as they are); crashes, timeouts and OOMs to build-fuzz/fuzz-artifacts/TARGET/. Add a finding
# to tests/fuzz/corpus/TARGET once it is fixed: CTest replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${OVIS_FUZZ_BUILD_DIR:-build-fuzz}
TARGETS="config preprocessor_config safetensors gguf tokenizer_load tokenizer_encode image json_request multipart data_url"

configure() {
  if [ ! -f "$BUILD/build.ninja" ]; then
    local launcher=()
    command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DOVIS_FUZZ=ON -DOVIS_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
  fi
}

# -max_len: JSON inputs up to 1 MiB reach nesting of the issue's 10^5-10^6 levels; the encoder
# and the image decoder get less (their cost grows with the input, not with nesting).
max_len_of() {
  case "$1" in
    tokenizer_encode) echo 65536 ;;
    image) echo 262144 ;;
    *) echo 1048576 ;;
  esac
}

case "${1:-}" in
  --list)
    echo "$TARGETS"
    exit 0
    ;;
  --replay)
    configure
    ninja -C "$BUILD" $(for t in $TARGETS; do printf 'fuzz_%s ' "$t"; done)
    ctest --test-dir "$BUILD" -R '^fuzz_corpus\.' --output-on-failure -j2
    exit 0
    ;;
  "" | -h | --help)
    sed -n '2,14p' "$0"
    exit 2
    ;;
esac

target=$1
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]}
shift 2
case " $TARGETS " in *" $target "*) ;; *)
  echo "unknown target '$target' (one of: $TARGETS)" >&2
  exit 2
  ;;
esac
configure
ninja -C "$BUILD" "fuzz_$target"
work="$BUILD/fuzz-corpus/$target"
artifacts="$BUILD/fuzz-artifacts/$target"
mkdir -p "$work" "$artifacts"
dict=()
[ -f "tests/fuzz/dicts/$target.dict" ] && dict=(-dict="tests/fuzz/dicts/$target.dict")
exec "$BUILD/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -max_len="$(max_len_of "$target")" \
  "${dict[@]}" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$@" "$work" "tests/fuzz/corpus/$target"
