#!/usr/bin/env bash
# The Slurm executor's overhead per stage: the coordinator's time from submitting a stage
# to having stored its outputs, less the stage's own work. Runs N tiny independent stages
# (dataset stages that take milliseconds) on the cluster, one at a time (--jobs 1: latency,
# submit → ingest) and all at once (throughput), and prints the overhead per stage.
#
#   scripts/slurm/start.sh                     # a cluster (or use your own)
#   scripts/bench_slurm_overhead.sh [N]        # N stages (default 8)
#
# R1FLOW picks the binary (default target/release/r1flow; `cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
r1flow=${R1FLOW:-target/release/r1flow}
[ -x "$r1flow" ] || { echo "no $r1flow: cargo build --release (or set R1FLOW)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  echo "name: slurm-overhead"
  echo "datasets:"
  echo "  arith: {kind: arithmetic, num_samples: 50}"
  echo "stages:"
  for i in $(seq 1 "$n"); do
    echo "  data$i: {kind: dataset, source: arith, seed: $i, test_size: 5}"
  done
} > "$work/m.yaml"

measure() {  # label, extra args
  local label=$1; shift
  local store="$work/store-$label"
  local t0 t1
  t0=$(date +%s.%N)
  "$r1flow" run "$work/m.yaml" --store "$store" --executor slurm "$@" >/dev/null 2>"$work/$label.log" \
    || { cat "$work/$label.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  "$r1flow" runs show last --store "$store" --json | python3 -c '
import json, sys
label, n, wall = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
run = json.load(sys.stdin)
work = sum(s["duration_s"] for s in run["stages"])
jobs = {s["job"] for s in run["stages"] if s.get("job")}
print(f"{label}: {n} stages as {len(jobs)} Slurm jobs in {wall:.1f} s wall; the stages own work "
      f"{work:.2f} s; overhead {(wall - work) / n:.2f} s per stage")
' "$label" "$n" "$(echo "$t1 - $t0" | bc)"
}
measure "one-at-a-time" --jobs 1
measure "all-at-once"
