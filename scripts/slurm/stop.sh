#!/usr/bin/env bash
# Stops the test cluster scripts/slurm/start.sh started. --purge also cancels every job
# first and deletes the cluster's state and logs.
set -uo pipefail
state=${R1FLOW_SLURM_STATE:-/tmp/r1flow-slurm}
purge=0
[ "${1:-}" = --purge ] && purge=1
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

stop() {  # name pidfile
  [ -s "$2" ] || return 0
  local pid
  pid=$(cat "$2")
  if kill -0 "$pid" 2>/dev/null; then
    echo "[slurm] stopping $1 (pid $pid)" >&2
    as_root kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && as_root kill -9 "$pid"
  fi
  as_root rm -f "$2"
}

if [ $purge = 1 ] && scontrol ping >/dev/null 2>&1; then
  jobs=$(squeue -h -o '%A' 2>/dev/null | tr '\n' ' ')
  [ -n "${jobs// /}" ] && as_root scancel $jobs && sleep 2
fi
stop slurmd "$state/run/slurmd.pid"
stop slurmctld "$state/run/slurmctld.pid"
stop munged /run/munge/munged.pid
[ $purge = 1 ] && as_root rm -rf "$state"
exit 0
