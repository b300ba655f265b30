#!/usr/bin/env bash
# GPU readiness, on a machine with an NVIDIA GPU (not run by CI, which has none):
#   1. builds r1flow with the cuda and wgpu backends (and the benchmark programs);
#   2. checks the logits of each GPU backend against the CPU backend's on the committed
#      fixtures (a Qwen2 and a Llama checkpoint);
#   3. runs a few GRPO steps of a checkpoint with SmolLM2-135M's architecture on each GPU
#      backend in f32, and asks for bf16 (which this r1flow refuses before running: it
#      trains in f32 only), printing seconds per step and the peak GPU memory in use.
#
#   bash scripts/gpu-check.sh [STEPS]
#
# The 135M checkpoint is made by scripts/make_hf_checkpoint.py (torch and transformers),
# or taken from $R1FLOW_GPU_CHECKPOINT when that directory exists (a GPU machine without
# Python packages: make it elsewhere and copy it over). Exit status 0 when every check
# that ran passed; logits must agree to 1e-3 of the largest logit.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-4}"
CHECKPOINT="${R1FLOW_GPU_CHECKPOINT:-${TMPDIR:-/tmp}/r1flow-bench-smollm2-135m}"
DATA=pipelines/data/gsm8k-style.jsonl
BENCH=target/release/bench_hf

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi not found)" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

echo "== build (release, features cuda,wgpu,bench)"
cargo build --release --locked --features cuda,wgpu,bench --bin r1flow --bin bench_hf

echo "== logits against the CPU backend"
failed=0
for backend in cuda wgpu; do
  for fixture in tests/fixtures/qwen2-tiny/hf tests/fixtures/llama-chat-tiny; do
    out=$("$BENCH" parity --backend "$backend" --model "$fixture")
    echo "$backend $fixture: $out"
    if ! python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["max_abs_diff"] <= 1e-3 * max(1.0, r["max_abs_logit"]) else 1)' "$out"; then
      echo "  FAILED: logits differ from the CPU backend's" >&2
      failed=1
    fi
  done
done

if [ ! -f "$CHECKPOINT/config.json" ]; then
  echo "== making $CHECKPOINT (SmolLM2-135M architecture, random weights)"
  python3 scripts/make_hf_checkpoint.py --size smollm2-135m --out "$CHECKPOINT"
fi

# Largest memory.used (MiB) seen while process $1 runs.
peak_gpu_memory() {
  local peak=0 used
  while kill -0 "$1" 2>/dev/null; do
    used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    [ "$used" -gt "$peak" ] && peak=$used
    sleep 0.2
  done
  echo "$peak"
}

echo "== GRPO on the 135M checkpoint: 4 prompts x 4 completions of 32 tokens, $STEPS steps"
for backend in cuda wgpu; do
  for dtype in f32 bf16; do
    log=$(mktemp)
    "$BENCH" grpo --backend "$backend" --dtype "$dtype" --model "$CHECKPOINT" --data "$DATA" \
      --steps "$STEPS" --gradient-checkpointing off >"$log" 2>&1 &
    pid=$!
    peak=$(peak_gpu_memory "$pid")
    if wait "$pid"; then
      echo "$backend $dtype: $(tail -1 "$log") peak GPU memory ${peak} MiB"
    elif [ "$dtype" = bf16 ] && grep -q "cannot train in" "$log"; then
      echo "$backend $dtype: refused before running (this r1flow trains in f32 only)"
    else
      echo "$backend $dtype: FAILED" >&2
      cat "$log" >&2
      failed=1
    fi
    rm -f "$log"
  done
done
exit "$failed"
