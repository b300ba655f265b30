#!/usr/bin/env bash
# GPU readiness: the one script to run when a machine with an NVIDIA GPU is lent (CI has
# none). Every phase has its own time limit so that the whole stays under 8 minutes after
# the build; a phase that fails or runs out of time is recorded and the next one runs.
#
#   bash scripts/gpu-check.sh [OUT.json]      (default: $OUT/gpu-check.json if $OUT is a
#                                              directory, else target/gpu-check.json)
#
#   1. build: r1flow, bench_hf and the integration tests, release, features cuda + wgpu;
#   2. parity: each GPU backend's logits and greedy tokens against the CPU backend's on the
#      committed fixtures (a Qwen2 and a Llama checkpoint); logits must agree to 1e-3 of
#      the largest logit;
#   3. launches: how many kernels each fused operation, and a training step, launch on cuda
#      with burn's fusion (benches/bench_launches.rs; docs/src/gpu.md compares them with
#      wgpu's and with dedicated kernels);
#   4. pipeline: the every-kind pipeline (tests/it/gpu_pipeline.rs: all stage kinds) on
#      cuda, every logged metric compared with the CPU backend's, and its wall time;
#   5. GRPO steps of a checkpoint with SmolLM2-135M's architecture on cuda in f32 and bf16
#      (mixed precision: bf16 products, f32 weights; a binary that refuses bf16 is
#      recorded as such): seconds per step (generation, update), completion tokens per second of
#      generation and the peak GPU memory in use;
#   6. the same step in TRL on the same GPU, when torch with CUDA and trl are importable,
#      and the ratio.
#
# Everything measured lands in one JSON file (its keys: device, build_s, parity,
# launches, pipeline, grpo, trl, ratios, failed). Exit status 0 when every check that ran
# passed.
#
# The 135M checkpoint is made by scripts/make_hf_checkpoint.py (torch and transformers),
# or taken from $R1FLOW_GPU_CHECKPOINT when that directory exists (a GPU machine without
# Python packages: make it elsewhere and copy it over).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -n "${1:-}" ]; then
  JSON="$1"
elif [ -n "${OUT:-}" ] && [ -d "${OUT}" ]; then
  JSON="$OUT/gpu-check.json"
else
  JSON=target/gpu-check.json
fi
STEPS="${R1FLOW_GPU_STEPS:-4}"
CHECKPOINT="${R1FLOW_GPU_CHECKPOINT:-${TMPDIR:-/tmp}/r1flow-bench-smollm2-135m}"
DATA=pipelines/data/gsm8k-style.jsonl
BENCH=target/release/bench_hf
PARTS=$(mktemp -d)
trap 'rm -rf "$PARTS"' EXIT
mkdir -p "$(dirname "$JSON")"
failed=0

# `part NAME JSON`: one figure of the final file.
part() { printf '%s\n' "$2" >"$PARTS/$1.json"; }
fail() { echo "gpu-check: $1" >&2; failed=1; printf '%s\n' "$1" >>"$PARTS/failed.txt"; }

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi not found)" >&2
  exit 1
fi
device=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
echo "== device: $device"
part device "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$device")"

echo "== build (release, features cuda,wgpu,bench)"
start=$SECONDS
if ! cargo build --release --locked --features cuda,wgpu,bench --bin r1flow --bin bench_hf \
  --bin bench_launches \
  || ! cargo test --release --locked --features cuda,wgpu --test it --no-run; then
  fail "build failed"
  exit 1
fi
part build_s "$((SECONDS - start))"

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

echo "== parity: logits against the CPU backend"
rows=()
for backend in cuda wgpu; do
  for fixture in tests/fixtures/qwen2-tiny/hf tests/fixtures/llama-chat-tiny; do
    if out=$(timeout 120 "$BENCH" parity --backend "$backend" --model "$fixture"); then
      echo "$backend $fixture: $out"
      rows+=("{\"backend\": \"$backend\", \"fixture\": \"$fixture\", \"result\": $out}")
      if ! python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["max_abs_diff"] <= 1e-3 * max(1.0, r["max_abs_logit"]) else 1)' "$out"; then
        fail "parity: $backend on $fixture: logits differ from the CPU backend's"
      fi
    else
      fail "parity: $backend on $fixture did not run"
    fi
  done
done
part parity "[$(IFS=,; echo "${rows[*]}")]"

echo "== launches: kernels per fused operation on cuda (burn's fusion)"
if out=$(timeout 120 target/release/bench_launches --backend cuda --json); then
  echo "$out"
  part launches "[$(echo "$out" | paste -sd,)]"
else
  fail "launches: bench_launches did not run on cuda"
fi

echo "== pipeline: every stage kind on cuda against the CPU"
start=$SECONDS
log=$(mktemp)
if R1FLOW_GPU_BACKEND=cuda timeout 240 cargo test --release --locked --features cuda,wgpu \
  --test it gpu_pipeline -- --include-ignored --nocapture >"$log" 2>&1; then
  status=passed
else
  status=failed
  fail "pipeline: the every-kind pipeline on cuda failed (log below)"
  tail -40 "$log" >&2
fi
grep -E "^(pipeline on|max relative difference)" "$log" || true
part pipeline "$(python3 - "$log" "$status" "$((SECONDS - start))" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
walls = {b: float(s) for b, s in re.findall(r"pipeline on (\w+): ([\d.]+) s", text)}
worst = {m: float(d) for m, d in re.findall(r"max relative difference (.+): ([\d.e+-]+)", text)}
print(json.dumps({"status": sys.argv[2], "wall_s": int(sys.argv[3]), "run_s": walls,
                  "max_relative_difference": worst}))
PY
)"
rm -f "$log"

if [ ! -f "$CHECKPOINT/config.json" ]; then
  echo "== making $CHECKPOINT (SmolLM2-135M architecture, random weights)"
  timeout 120 python3 scripts/make_hf_checkpoint.py --size smollm2-135m --out "$CHECKPOINT" \
    || fail "could not make the 135M checkpoint (torch and transformers needed)"
fi

echo "== GRPO on the 135M checkpoint: 4 prompts x 4 completions of 32 tokens, $STEPS steps"
rows=()
if [ -f "$CHECKPOINT/config.json" ]; then
  for dtype in f32 bf16; do
    log=$(mktemp)
    timeout 150 "$BENCH" grpo --backend cuda --dtype "$dtype" --model "$CHECKPOINT" \
      --data "$DATA" --steps "$STEPS" --gradient-checkpointing off >"$log" 2>&1 &
    pid=$!
    peak=$(peak_gpu_memory "$pid")
    if wait "$pid"; then
      result=$(tail -1 "$log")
      echo "cuda $dtype: $result peak GPU memory ${peak} MiB"
      rows+=("{\"backend\": \"cuda\", \"dtype\": \"$dtype\", \"peak_gpu_mib\": $peak, \"result\": $result}")
    elif [ "$dtype" = bf16 ] && grep -q "cannot train in" "$log"; then
      echo "cuda $dtype: refused before running"
      rows+=("{\"backend\": \"cuda\", \"dtype\": \"$dtype\", \"refused\": true}")
    else
      fail "grpo: cuda $dtype failed"
      tail -20 "$log" >&2
    fi
    rm -f "$log"
  done
fi
part grpo "[$(IFS=,; echo "${rows[*]}")]"

echo "== TRL on the same GPU"
if [ -f "$CHECKPOINT/config.json" ] \
  && python3 -c 'import torch, trl, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  if out=$(timeout 180 python3 scripts/bench_hf_grpo.py --side trl --device cuda \
    --checkpoint "$CHECKPOINT" --steps "$STEPS" --prompts 4 --generations 4 --completion 32 \
    --gradient-checkpointing off 2>/dev/null | tail -1); then
    echo "TRL cuda f32: $out"
    part trl "$out"
  else
    fail "TRL's step did not run"
  fi
else
  echo "torch with CUDA or trl is not importable here: no TRL figures"
  part trl '{"skipped": "torch with CUDA or trl is not importable"}'
fi

python3 - "$PARTS" "$JSON" "$failed" <<'PY'
import json, pathlib, sys
parts, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
report = {p.stem: json.loads(p.read_text()) for p in sorted(parts.glob("*.json"))}
failed = parts / "failed.txt"
report["failed"] = failed.read_text().splitlines() if failed.exists() else []
f32 = [g["result"] for g in report.get("grpo", []) if g.get("dtype") == "f32" and "result" in g]
for g in report.get("grpo", []):
    r = g.get("result")
    if r and r.get("generation_s"):
        # Completion tokens generated per second of the generation phase.
        r["completion_tokens_per_s"] = 16 * r.get("completion_length", 0) / r["generation_s"]
trl = report.get("trl", {})
if f32 and "step_s" in trl:
    report["ratios"] = {"trl_step_s_over_r1flow_step_s": trl["step_s"] / f32[0]["step_s"]}
out.write_text(json.dumps(report, indent=2) + "\n")
print(f"gpu-check: figures in {out}")
PY
exit "$failed"
