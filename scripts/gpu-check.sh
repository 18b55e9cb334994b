#!/usr/bin/env bash
# The GPU check of the CUDA backend (issue 10), in one run that fits a short device lease:
#   1. environment (GPU, driver, torch, CUDA libraries) and the golden fixture;
#   2. binaries: the prebuilt ones of .gpu/ (scripts/gpu-bundle.sh) when they were built from
#      this tree and run here, else configured and built here with every core;
#   3. correctness: torch's CUDA noise recorded, then every CUDA test (gtest JSON reports), the
#      test binaries side by side;
#   4. speed: `ovis bench t2i|edit|dit|llm --device cuda --json` at the real shapes (1024², 50
#      steps) and the plain-PyTorch baselines (bench/torch/) in the same run; last, `bench llm`
#      with q8_0 and q4_k weights.
# Every step has its own timeout, clipped to what is left of the whole budget; summary.json is
# rewritten after every step, so an interrupted run still leaves what it measured.
#
#   scripts/gpu-check.sh [OUTDIR]        OUTDIR defaults to $OUT, else ./gpu-check-out
#
# OUTDIR receives: summary.json (tests, benchmarks, baselines, the issue's targets),
# gpu-check.log (this script's own log), torch_cuda_randn.json (torch's noise: commit it as
# tests/data/torch_cuda_randn.json) and gpu-check-logs.tar.gz (every step's log and report).
#
# Environment:
#   OVIS_GPU_CHECK_BUDGET_S  wall-clock budget of the whole script in seconds (default 420)
#   OVIS_GPU_CHECK_QUICK=1   benchmarks at small sizes only (256², 4 steps): a smoke run
#   OVIS_GPU_CHECK_BUILD=1   ignore the prebuilt binaries and build here
#   OVIS_GPU_CHECK_DRY_RUN=1 no GPU needed: runs every step so the plumbing can be checked on a
#                            machine without one (tests skip, benchmarks fail, summary written)
#   OVIS_GPU_WORK            scratch folder (default /tmp/ovis-gpu-check)
# Exit status 0 only when every CUDA test passed and every target was met.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
START=$(date +%s)
BUDGET=${OVIS_GPU_CHECK_BUDGET_S:-420}
DEADLINE=$((START + BUDGET))
RESERVE=15 # kept for the final summary and packing
DRY=${OVIS_GPU_CHECK_DRY_RUN:-0}
FINAL=${1:-${OUT:-$ROOT/gpu-check-out}}
mkdir -p "$FINAL"
FINAL=$(cd "$FINAL" && pwd)
WORK=${OVIS_GPU_WORK:-/tmp/ovis-gpu-check}
OUTDIR=$WORK/results # every log and report; packed into FINAL after each step
rm -rf "$OUTDIR" && mkdir -p "$OUTDIR"
JOBS=$(nproc)
LOG=$OUTDIR/gpu-check.log
: >"$LOG"
PY=$(command -v python3 || true)
ORIG_LD=${LD_LIBRARY_PATH:-} # the image's own (the driver's libcuda may be found only through it)
DEVICE_TESTS="test_backend_ops test_cuda_goldens test_device_cli test_torch_randn test_decode_ops"

log() { echo "[gpu-check +$(($(date +%s) - START))s] $*" | tee -a "$LOG"; }
left() { echo $((DEADLINE - $(date +%s) - RESERVE)); }

# Summary and logs into FINAL (after every step; cheap).
publish() {
  if [ -n "$PY" ]; then
    "$PY" scripts/gpu_summary.py "$OUTDIR" >"$OUTDIR/summary.txt" 2>&1
    cp "$OUTDIR/summary.json" "$FINAL/" 2>/dev/null
  fi
  cp "$LOG" "$FINAL/gpu-check.log"
  [ -f "$OUTDIR/torch_cuda_randn.json" ] && cp "$OUTDIR/torch_cuda_randn.json" "$FINAL/"
  tar -czf "$FINAL/gpu-check-logs.tar.gz" -C "$WORK" results 2>/dev/null
  return 0
}

finish() {
  trap - EXIT
  log "done in $(($(date +%s) - START)) s"
  publish
  cat "$OUTDIR/summary.txt" 2>/dev/null
  if [ -n "$PY" ] && "$PY" -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["passed"] else 1)' \
    "$OUTDIR/summary.json" 2>/dev/null; then
    exit 0
  fi
  exit 1
}
trap finish EXIT

# step NAME TIMEOUT_S CMD...: CMD with its output in NAME.log, within TIMEOUT_S and the budget.
step() {
  local name=$1 t=$2 l
  shift 2
  l=$(left)
  [ "$l" -lt "$t" ] && t=$l
  if [ "$t" -lt 5 ]; then
    log "$name: skipped, out of time"
    echo "skipped: the budget of ${BUDGET} s was spent" >"$OUTDIR/$name.log"
    return 124
  fi
  log "$name (timeout ${t} s): $*"
  timeout -k 5 "$t" "$@" >"$OUTDIR/$name.log" 2>&1
  local rc=$?
  [ "$rc" = 124 ] && echo "gpu-check: timed out after ${t} s" >>"$OUTDIR/$name.log"
  log "$name: exit $rc ($(tail -c 300 "$OUTDIR/$name.log" | tail -1))"
  echo "$rc" >"$OUTDIR/$name.rc"
  return $rc
}

# ---- 1. environment ----
log "budget ${BUDGET} s, results to $FINAL"
{
  nvidia-smi
  nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,temperature.gpu --format=csv
  echo "--- os"
  cat /etc/os-release
  uname -a
  echo "--- cpu"
  grep -m1 'model name' /proc/cpuinfo
  nproc
  free -g
  echo "--- tools"
  for c in cmake ninja g++ nvcc pkg-config pkgconf ccache; do echo "$c: $(command -v "$c")"; done
  nvcc --version
  g++ --version | head -1
  ldd --version | head -1
  echo "--- CUDA libraries known to ldconfig"
  ldconfig -p | grep -E 'libcudart|libcublas|libcudnn\.|libcurl|libssl|libicu|libdnnl|libjpeg|libpng|libpcre2' 
  ls -d /usr/local/cuda* 2>&1
} >"$OUTDIR/environment.txt" 2>&1
if [ -n "$PY" ]; then
  timeout 60 "$PY" - >"$OUTDIR/environment.json" 2>>"$OUTDIR/environment.txt" <<'PYEOF'
import json, os, subprocess
def run(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception: return ""
e = {"driver": run("nvidia-smi --query-gpu=driver_version --format=csv,noheader"),
     "nvcc": run("nvcc --version | tail -1"), "cpu": run("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
     "cores": os.cpu_count()}
try:
    import torch
    e["torch"] = torch.__version__
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        e.update(gpu=p.name, sm_count=p.multi_processor_count, memory_gb=p.total_memory / 1e9,
                 compute_capability=f"{p.major}.{p.minor}")
except Exception as x:
    e["torch_error"] = repr(x)
print(json.dumps(e))
PYEOF
fi
log "environment: $(cat "$OUTDIR/environment.json" 2>/dev/null)"
GPU_CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
if [ -z "$GPU_CC" ] && [ "$DRY" != 1 ]; then
  log "error: nvidia-smi shows no GPU (set OVIS_GPU_CHECK_DRY_RUN=1 to check the script without one)"
  exit 1
fi

# CUDA's libraries: the toolkit's and those of torch's nvidia wheels (cuDNN, cuBLAS).
CUDA_LIBDIRS=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
  /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -d "$d" ] && CUDA_LIBDIRS="$CUDA_LIBDIRS:$d"
done
NV=""
[ -n "$PY" ] && NV=$(timeout 30 "$PY" -c 'import nvidia, os; print(os.pathsep.join(nvidia.__path__))' 2>/dev/null)
for base in ${NV//:/ }; do
  for d in "$base"/*/lib; do [ -d "$d" ] && CUDA_LIBDIRS="$CUDA_LIBDIRS:$d"; done
done
CUDA_LIBDIRS=$(echo "$CUDA_LIBDIRS:$ORIG_LD" | sed 's/::*/:/g; s/^://; s/:$//')
log "CUDA library folders: ${CUDA_LIBDIRS:-none}"

# ---- the fixture (the golden tests and the CLI tests read it) ----
rm -rf "$WORK/tiny-ovis-u1"
tar -xJf tests/fixtures/tiny-ovis-u1.tar.xz -C "$WORK" || log "error: cannot unpack the fixture"
export OVIS_FIXTURE_DIR=$WORK/tiny-ovis-u1

# ---- 2. binaries: prebuilt when they fit this tree and run here, else built here ----
BIN=""
BIN_LD=""
HOW=""
PRE=$WORK/prebuilt
rm -rf "$PRE"
if [ "${OVIS_GPU_CHECK_BUILD:-0}" = 1 ]; then
  log "prebuilt binaries: not used (OVIS_GPU_CHECK_BUILD=1)"
elif [ ! -f .gpu/bin.tar.xz ]; then
  log "prebuilt binaries: none (.gpu/bin.tar.xz; run scripts/gpu-bundle.sh and carry .gpu)"
else
  mkdir -p "$PRE" && tar -xJf .gpu/bin.tar.xz -C "$PRE"
  want=$(bash scripts/gpu-source-hash.sh)
  have=$(cat .gpu/SOURCES 2>/dev/null)
  if [ "$want" != "$have" ]; then
    log "prebuilt binaries: built from other sources (${have:-unknown}, this tree $want)"
  else
    LD_LIBRARY_PATH="$PRE/lib:$CUDA_LIBDIRS" ldd "$PRE/bin/ovis" >"$OUTDIR/prebuilt_ldd.txt" 2>&1
    if LD_LIBRARY_PATH="$PRE/lib:$CUDA_LIBDIRS" timeout 60 "$PRE/bin/ovis" devices \
      >"$OUTDIR/prebuilt_devices.txt" 2>&1 &&
      { [ "$DRY" = 1 ] || grep -q '^cuda:0' "$OUTDIR/prebuilt_devices.txt"; }; then
      BIN=$PRE/bin
      BIN_LD=$PRE/lib:$CUDA_LIBDIRS
      HOW="prebuilt by scripts/gpu-bundle.sh (sources $have)"
    else
      log "prebuilt binaries do not run here: $(grep -m3 . "$OUTDIR/prebuilt_devices.txt" | tr '\n' ' ')" \
        "$(grep 'not found' "$OUTDIR/prebuilt_ldd.txt" | tr '\n' ' ')"
    fi
  fi
fi
publish

if [ -z "$BIN" ]; then
  NVCC=$(command -v nvcc || true)
  [ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
  CM=(-DCMAKE_BUILD_TYPE=Release -DOVIS_CUDA=ON "-DOVIS_CUDA_ARCHS=${GPU_CC:-90}")
  [ -n "$NVCC" ] && CM+=("-DCMAKE_CUDA_COMPILER=$NVCC")
  command -v ccache >/dev/null &&
    CM+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  CUDNN_INC=""
  for base in /usr/local/cuda /usr ${NV//:/ }; do
    for d in "$base"/include "$base"/cudnn/include; do
      [ -f "$d/cudnn.h" ] && CUDNN_INC=$d && break 2
    done
  done
  CUDNN_LIB=""
  for d in ${CUDA_LIBDIRS//:/ } /usr/lib/x86_64-linux-gnu; do
    for f in "$d"/libcudnn.so "$d"/libcudnn.so.9; do
      [ -e "$f" ] && CUDNN_LIB=$f && break 2
    done
  done
  [ -n "$CUDNN_INC" ] && CM+=("-DOVIS_CUDNN_INCLUDE_DIR=$CUDNN_INC")
  [ -n "$CUDNN_LIB" ] && CM+=("-DOVIS_CUDNN_LIBRARY=$CUDNN_LIB")
  log "building here: nvcc ${NVCC:-not found}, cudnn.h in ${CUDNN_INC:-?}, libcudnn ${CUDNN_LIB:-?}"
  BIN_LD=$CUDA_LIBDIRS
  if [ -f .gpu/deps.tar.xz ]; then
    # The -dev packages of .gpu/ plus the runtime libraries of the prebuilt bundle (not its
    # libgomp: the compiler here brings its own).
    rm -rf "$WORK/prefix" && mkdir -p "$WORK"
    tar -xJf .gpu/deps.tar.xz -C "$WORK"
    P=$WORK/prefix/usr
    L=$P/lib/x86_64-linux-gnu
    if [ -f .gpu/bin.tar.xz ]; then
      [ -d "$PRE/lib" ] || { mkdir -p "$PRE" && tar -xJf .gpu/bin.tar.xz -C "$PRE"; }
      find "$PRE/lib" -type f ! -name 'libgomp*' -exec cp -n {} "$L/" \;
    fi
    export PKG_CONFIG_SYSROOT_DIR=$WORK/prefix
    export PKG_CONFIG_LIBDIR=$L/pkgconfig:$P/share/pkgconfig
    export CPATH=$P/include:$P/include/x86_64-linux-gnu${CPATH:+:$CPATH}
    export LIBRARY_PATH=$L${LIBRARY_PATH:+:$LIBRARY_PATH}
    CM+=("-DCMAKE_PREFIX_PATH=$P" "-DICU_ROOT=$P" "-DOPENSSL_ROOT_DIR=$P"
      "-DCMAKE_EXE_LINKER_FLAGS=-L$L -Wl,-rpath-link,$L")
    if ! command -v pkg-config >/dev/null && [ -x "$P/bin/pkgconf" ]; then
      # The bundled pkgconf, with its libpkgconf from the prefix.
      printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$L" "$P/bin/pkgconf" >"$WORK/pkg-config"
      chmod +x "$WORK/pkg-config"
      CM+=("-DPKG_CONFIG_EXECUTABLE=$WORK/pkg-config")
    fi
    BIN_LD=$L:$BIN_LD
  fi
  # Test discovery at CTest time: the build runs none of the binaries it links.
  CM+=(-DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST)
  # shellcheck disable=SC2086
  if step configure 120 cmake -S . -B "$WORK/build" -G Ninja "${CM[@]}" &&
    step build 300 ninja -C "$WORK/build" -j"$JOBS" ovis $DEVICE_TESTS; then
    BIN=$WORK/build
    HOW="built here ($JOBS jobs, sm_${GPU_CC:-90})"
  fi
fi
if [ -z "$BIN" ]; then
  log "error: no working binary (see configure.log, build.log in gpu-check-logs.tar.gz)"
  echo '{"binary": null}' >"$OUTDIR/binary.json"
  exit 1
fi
log "binaries: $HOW in $BIN"
echo "{\"binary\": \"$HOW\"}" >"$OUTDIR/binary.json"
export LD_LIBRARY_PATH=$BIN_LD
export OVIS_BINARY=$BIN/ovis
"$BIN/ovis" devices >"$OUTDIR/devices.txt" 2>&1
log "ovis devices: $(tr '\n' ' ' <"$OUTDIR/devices.txt")"
publish

# Python (torch) runs without our libraries on its path (an array: `timeout` runs no functions).
PYRUN=(env "LD_LIBRARY_PATH=$ORIG_LD" "${PY:-python3}")

# ---- 3. correctness ----
if step torch_randn_vector 60 "${PYRUN[@]}" scripts/torch_randn_vector.py --out "$OUTDIR/torch_cuda_randn.json"; then
  export OVIS_TORCH_RANDN_VECTOR=$OUTDIR/torch_cuda_randn.json
fi
publish
# The test binaries side by side (one GPU, many cores; their CPU references share the cores).
T=$(left)
[ "$T" -gt 180 ] && T=180
log "CUDA tests side by side (timeout ${T} s each): $DEVICE_TESTS"
n=$(echo "$DEVICE_TESTS" | wc -w)
THREADS=$(((JOBS + n - 1) / n))
for t in $DEVICE_TESTS; do
  step "$t" "$T" env OMP_NUM_THREADS="$THREADS" "$BIN/$t" --gtest_output="json:$OUTDIR/tests_$t.json" &
done
wait
publish

# ---- 4. speed (one at a time; the headline measures first) ----
if [ "${OVIS_GPU_CHECK_QUICK:-0}" = 1 ]; then
  SIZE=256 STEPS=4 DEC=32 PROMPT=128
else
  SIZE=1024 STEPS=50 DEC=128 PROMPT=512
fi
O=("$BIN/ovis" --device cuda -t "$JOBS" bench)
bench() { # bench NAME TIMEOUT ARGS...: the JSON line of `ovis bench` into NAME.json
  local name=$1
  step "$@" && grep '^{' "$OUTDIR/$1.log" | tail -1 >"$OUTDIR/$name.json"
  publish
}
bench bench_t2i 120 "${O[@]}" t2i --json --size "$SIZE" --steps "$STEPS" --warmup 1
bench bench_edit 150 "${O[@]}" edit --json --size "$SIZE" --steps "$STEPS" --warmup 1
bench bench_dit 90 "${O[@]}" dit --json --size "$SIZE" --repeat 5
step torch_dit 90 "${PYRUN[@]}" bench/torch/torch_dit.py --device cuda --size "$SIZE" --reps 5
publish
bench bench_llm 90 "${O[@]}" llm --json --prompt-tokens "$PROMPT" --decode-tokens "$DEC"
step torch_llm 90 "${PYRUN[@]}" bench/torch/torch_llm.py --device cuda --prompt "$PROMPT" --gen "$DEC"
publish
# Quantized weights on the GPU (issue 9): decode and prefill with q8_0 / q4_k blocks against the
# bf16 run above (synthetic weights of the real shapes, quantized in memory on the host first).
for qt in q8_0 q4_k; do
  bench "bench_llm_$qt" 120 "${O[@]}" llm --json --type "$qt" --prompt-tokens "$PROMPT" --decode-tokens "$DEC"
done
# finish (EXIT trap): the summary, the logs, the exit status
