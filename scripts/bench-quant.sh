#!/bin/bash
# The quantized-weight measurements of the README, all in one run on one machine:
#  1. LLM decode/prefill and the 512² DiT forward per weight type (`ovis bench`, synthetic weights
#     of the real shapes quantized in memory), interleaved with PyTorch bf16 (TORCH_DIR) in rounds;
#  2. file size and peak RSS of `ask` (one image, 8 tokens) and of a 1024² `generate` (1 step) per
#     type, from real-shape synthetic GGUF files (`ovis quantize --synthetic`).
# Usage: scripts/bench-quant.sh [OUT_DIR]  (default /tmp/ovis-bench-quant; needs ~14 GB of disk)
# Env: OVIS (default build/ovis), FIXTURE (tokenizer and a test image; default the unpacked
#      fixture), TORCH_DIR (torch_llm.py / torch_dit.py; skipped when absent), ROUNDS (default 2),
#      PYTHON (default /usr/bin/python3), THREADS (default 2), PHASES ("speed memory"),
#      GEN_TYPES (types of the 1024² generate, default all three), DECODE_TOKENS (default 32).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/ovis-bench-quant}
OVIS=${OVIS:-build/ovis}
FIXTURE=${FIXTURE:-build/fixtures/tiny-ovis-u1}
TORCH_DIR=${TORCH_DIR:-/work/shared/bench}
ROUNDS=${ROUNDS:-2}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-2}
PHASES=${PHASES:-speed memory}
DECODE_TOKENS=${DECODE_TOKENS:-32}
TYPES="bf16 q8_0 q4_k"
GEN_TYPES=${GEN_TYPES:-$TYPES}
mkdir -p "$OUT"
log="$OUT/results-${PHASES// /-}.txt"
: > "$log"
note() { echo "$*" | tee -a "$log"; }
jget() { "$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); print(d[sys.argv[2]])" "$@"; }

note "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) threads=$THREADS"
note "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

case " $PHASES " in *" speed "*) ;; *) ROUNDS=0 ;; esac
for r in $(seq 1 "$ROUNDS"); do
  for t in $TYPES; do
    "$OVIS" -q -t "$THREADS" bench llm --type "$t" \
      --decode-tokens "$DECODE_TOKENS" --json > "$OUT/llm-$t-$r.json"
    note "llm round=$r type=$t decode_tok_s=$(jget "$OUT/llm-$t-$r.json" decode_tok_s)" \
      "prefill_tok_s=$(jget "$OUT/llm-$t-$r.json" prefill_tok_s)" \
      "weights_gb=$(jget "$OUT/llm-$t-$r.json" weights_gb)" \
      "peak_rss_gb=$(jget "$OUT/llm-$t-$r.json" peak_rss_gb)"
  done
  if [ -f "$TORCH_DIR/torch_llm.py" ]; then
    note "llm round=$r torch-bf16 $("$PYTHON" "$TORCH_DIR/torch_llm.py" --prompt 512 \
      --threads "$THREADS" | tr '\n' ' ')"
  fi
  for t in $TYPES; do
    "$OVIS" -q -t "$THREADS" bench dit --size 512 --type "$t" --json > "$OUT/dit-$t-$r.json"
    note "dit512 round=$r type=$t dit_forward_s=$(jget "$OUT/dit-$t-$r.json" dit_forward_s)" \
      "first_forward_s=$(jget "$OUT/dit-$t-$r.json" first_forward_s)" \
      "peak_rss_gb=$(jget "$OUT/dit-$t-$r.json" peak_rss_gb)"
  done
  if [ -f "$TORCH_DIR/torch_dit.py" ]; then
    note "dit512 round=$r torch-bf16 $("$PYTHON" "$TORCH_DIR/torch_dit.py" --size 512 \
      --threads "$THREADS" | tr '\n' ' ')"
  fi
done
note "# load average after the speed rounds: $(cut -d' ' -f1-3 /proc/loadavg)"

case " $PHASES " in *" memory "*) ;; *) exit 0 ;; esac
img=$(ls "$FIXTURE"/inputs/*.png | head -1)
for t in $TYPES; do
  f="$OUT/ovis-u1-3b-synthetic-$t.gguf"
  /usr/bin/time -f "%e" -o "$OUT/quantize-$t.time" \
    "$OVIS" -q quantize --synthetic -m "$FIXTURE" -o "$f" --type "$t"
  note "file type=$t bytes=$(stat -c %s "$f") quantize_s=$(tail -1 "$OUT/quantize-$t.time")"
  /usr/bin/time -f "%M" -o "$OUT/ask-$t.rss" "$OVIS" -t "$THREADS" ask -m "$f" \
    --image "$img" -p "Describe the image." -n 8 > /dev/null 2> "$OUT/ask-$t.err"
  note "ask type=$t peak_rss_kb=$(tail -1 "$OUT/ask-$t.rss") | $(tail -1 "$OUT/ask-$t.err")"
done
for t in $GEN_TYPES; do
  f="$OUT/ovis-u1-3b-synthetic-$t.gguf"
  /usr/bin/time -f "%M" -o "$OUT/gen-$t.rss" "$OVIS" -q -t "$THREADS" generate -m "$f" \
    -p "a cat" -W 1024 -H 1024 --steps 1 -s 1 -o "$OUT/gen-$t.png"
  note "generate1024 steps=1 type=$t peak_rss_kb=$(tail -1 "$OUT/gen-$t.rss")"
done
rm -f "$OUT"/ovis-u1-3b-synthetic-*.gguf
note "# done $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
