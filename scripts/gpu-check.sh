#!/usr/bin/env bash
# The GPU check of the CUDA backend (issue 10). Builds (or takes the prebuilt binaries from
# scripts/gpu-bundle.sh), runs every CUDA test, the benchmarks at the real shapes and the
# plain-PyTorch baselines in the same run, and writes one summary.json plus the logs.
#
#   scripts/gpu-check.sh [OUTDIR]        OUTDIR defaults to $OUT, else ./gpu-check-out
#
# OUTDIR receives three files: summary.json, torch_cuda_randn.json (the torch noise vector; copy
# it to tests/data/ to keep it) and gpu-check-logs.tar.gz (every log and report).
#
# Works on a bare GPU machine with CUDA 13 (nvcc, cuBLAS, cuDNN from torch's wheels) and a
# python3 with torch, without Debian libraries or network, when the tree carries .gpu/ (made by
# scripts/gpu-bundle.sh): bin.tar.xz (binaries built elsewhere for sm_90) is tried first; if
# they do not run here, the project is built here against the libraries of deps.tar.xz.
# Environment: OVIS_GPU_CHECK_QUICK=1 runs the benchmarks at small sizes (a smoke run).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FINAL=${1:-${OUT:-$ROOT/gpu-check-out}}
mkdir -p "$FINAL"
WORK=${OVIS_GPU_WORK:-/tmp/ovis-gpu-check}
OUTDIR=$WORK/results  # every log and report; packed into FINAL at the end
rm -rf "$OUTDIR" && mkdir -p "$OUTDIR"
JOBS=$(nproc)
LOG=$OUTDIR/gpu-check.log
: >"$LOG"
log() { echo "[gpu-check $(date +%T)] $*" | tee -a "$LOG"; }
finish() {  # summary, then the three result files into FINAL
  "$PY" scripts/gpu_summary.py "$OUTDIR" 2>&1 | tee -a "$LOG"
  cp "$OUTDIR/summary.json" "$FINAL/" 2>/dev/null
  [ -f "$OUTDIR/torch_cuda_randn.json" ] && cp "$OUTDIR/torch_cuda_randn.json" "$FINAL/"
  tar -czf "$FINAL/gpu-check-logs.tar.gz" -C "$WORK" results
  "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if s["passed"] else 1)' \
    "$OUTDIR/summary.json"
}
step() {  # step NAME TIMEOUT_S CMD... : runs CMD with its output in NAME.log
  local name=$1 t=$2
  shift 2
  log "$name: $*"
  timeout "$t" "$@" >"$OUTDIR/$name.log" 2>&1
  local rc=$?
  log "$name: exit $rc"
  return $rc
}

# ---- environment ----
nvidia-smi >"$OUTDIR/nvidia-smi.txt" 2>&1
PY=$(command -v python3)
"$PY" - >"$OUTDIR/environment.json" 2>>"$LOG" <<'PYEOF'
import json, subprocess, torch
p = torch.cuda.get_device_properties(0) if torch.cuda.is_available() else None
def run(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
print(json.dumps({"gpu": p.name if p else None, "sm_count": p.multi_processor_count if p else None,
                  "memory_gb": p.total_memory / 1e9 if p else None, "torch": torch.__version__,
                  "driver": run("nvidia-smi --query-gpu=driver_version --format=csv,noheader"),
                  "nvcc": run("nvcc --version | tail -1"), "cpu": run("nproc") + " cores"}))
PYEOF
log "environment: $(cat "$OUTDIR/environment.json")"

# ---- CUDA libraries: the toolkit's and those of torch's nvidia wheels (cuDNN, cuBLAS) ----
LIBDIRS=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && LIBDIRS="$LIBDIRS:$d"
done
NV=$("$PY" -c 'import nvidia, os; print(os.pathsep.join(nvidia.__path__))' 2>/dev/null)
for base in ${NV//:/ }; do
  for d in "$base"/*/lib; do [ -d "$d" ] && LIBDIRS="$LIBDIRS:$d"; done
done
CUDNN_INC=""
for base in ${NV//:/ } /usr/local/cuda /usr; do
  for d in "$base"/cudnn/include "$base"/include; do
    [ -f "$d/cudnn.h" ] && CUDNN_INC=$d && break 2
  done
done
CUDNN_LIB=$(find ${LIBDIRS//:/ } -maxdepth 1 -name 'libcudnn.so*' 2>/dev/null | sort | head -1)

# ---- the fixture ----
tar -xJf tests/fixtures/tiny-ovis-u1.tar.xz -C "$WORK"
export OVIS_FIXTURE_DIR=$WORK/tiny-ovis-u1

# ---- binaries: prebuilt first, else build here ----
BIN=""
HOW=""
DEPS_LIB=""
if [ -f .gpu/deps.tar.xz ]; then
  rm -rf "$WORK/prefix" && mkdir -p "$WORK/prefix"
  tar -xJf .gpu/deps.tar.xz -C "$WORK/prefix" --strip-components=1
  DEPS_LIB=$WORK/prefix/usr/lib/x86_64-linux-gnu
fi
export LD_LIBRARY_PATH="${DEPS_LIB}${LIBDIRS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -f .gpu/bin.tar.xz ]; then
  rm -rf "$WORK/prebuilt" && mkdir -p "$WORK/prebuilt"
  tar -xJf .gpu/bin.tar.xz -C "$WORK/prebuilt"
  if "$WORK/prebuilt/ovis" devices >"$OUTDIR/prebuilt_devices.txt" 2>&1 &&
    grep -q '^cuda:0' "$OUTDIR/prebuilt_devices.txt"; then
    BIN=$WORK/prebuilt
    HOW="prebuilt (scripts/gpu-bundle.sh)"
  else
    log "prebuilt binaries do not run here: $(head -3 "$OUTDIR/prebuilt_devices.txt" | tr '\n' ' ')"
  fi
fi
if [ -z "$BIN" ]; then
  ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
  CM=(-DCMAKE_BUILD_TYPE=Release -DOVIS_CUDA=ON "-DOVIS_CUDA_ARCHS=${ARCH:-90}")
  [ -n "$CUDNN_INC" ] && CM+=("-DOVIS_CUDNN_INCLUDE_DIR=$CUDNN_INC")
  [ -n "$CUDNN_LIB" ] && CM+=("-DOVIS_CUDNN_LIBRARY=$CUDNN_LIB")
  if [ -n "$DEPS_LIB" ]; then
    P=$WORK/prefix/usr
    CM+=("-DCMAKE_PREFIX_PATH=$P" "-DCMAKE_LIBRARY_PATH=$DEPS_LIB" "-DICU_ROOT=$P"
      "-DCMAKE_CXX_FLAGS=-I$P/include -I$P/include/x86_64-linux-gnu"
      "-DCMAKE_EXE_LINKER_FLAGS=-L$DEPS_LIB -Wl,-rpath-link,$DEPS_LIB")
    export PKG_CONFIG_PATH=$DEPS_LIB/pkgconfig:$P/share/pkgconfig
    export CPATH=$P/include:$P/include/x86_64-linux-gnu
  fi
  step configure 300 cmake -S . -B "$WORK/build" -G Ninja "${CM[@]}" &&
    step build 900 ninja -C "$WORK/build" -j"$JOBS" ovis test_backend_ops test_cuda_goldens \
      test_device_cli test_torch_randn test_decode_ops &&
    BIN=$WORK/build && HOW="built here ($JOBS jobs, sm_${ARCH:-90})"
fi
if [ -z "$BIN" ]; then
  log "no working binary: see configure.log / build.log"
  echo "{\"binary\": null}" >"$OUTDIR/binary.json"
  finish
  exit 1
fi
log "binaries: $HOW in $BIN"
echo "{\"binary\": \"$HOW\"}" >"$OUTDIR/binary.json"
"$BIN/ovis" devices >"$OUTDIR/devices.txt" 2>&1
export OVIS_BINARY=$BIN/ovis

# ---- torch's noise, recorded for the --rng torch-cuda test ----
step torch_randn_vector 120 "$PY" scripts/torch_randn_vector.py --out "$OUTDIR/torch_cuda_randn.json" &&
  export OVIS_TORCH_RANDN_VECTOR=$OUTDIR/torch_cuda_randn.json

# ---- CUDA tests (each a gtest JSON report) ----
for t in test_backend_ops test_cuda_goldens test_device_cli test_torch_randn test_decode_ops; do
  step "$t" 600 env OMP_NUM_THREADS=$JOBS "$BIN/$t" --gtest_output="json:$OUTDIR/tests_$t.json"
done

# ---- benchmarks (real shapes, synthetic weights) and the PyTorch baselines ----
if [ "${OVIS_GPU_CHECK_QUICK:-0}" = 1 ]; then SIZE=256 STEPS=4 DEC=32; else SIZE=1024 STEPS=50 DEC=128; fi
O="$BIN/ovis --device cuda -t $JOBS bench"
step bench_llm 300 $O llm --json --prompt-tokens 512 --decode-tokens "$DEC" &&
  tail -1 "$OUTDIR/bench_llm.log" >"$OUTDIR/bench_llm.json"
step bench_dit 300 $O dit --json --size "$SIZE" --repeat 5 &&
  tail -1 "$OUTDIR/bench_dit.log" >"$OUTDIR/bench_dit.json"
step bench_t2i 300 $O t2i --json --size "$SIZE" --steps "$STEPS" &&
  tail -1 "$OUTDIR/bench_t2i.log" >"$OUTDIR/bench_t2i.json"
step bench_edit 300 $O edit --json --size "$SIZE" --steps "$STEPS" &&
  tail -1 "$OUTDIR/bench_edit.log" >"$OUTDIR/bench_edit.json"
: >"$OUTDIR/baselines.txt"
step torch_dit 300 "$PY" bench/torch/torch_dit.py --device cuda --size "$SIZE" --reps 5 &&
  cat "$OUTDIR/torch_dit.log" >>"$OUTDIR/baselines.txt"
step torch_llm 300 "$PY" bench/torch/torch_llm.py --device cuda --prompt 512 --gen "$DEC" &&
  cat "$OUTDIR/torch_llm.log" >>"$OUTDIR/baselines.txt"

finish
