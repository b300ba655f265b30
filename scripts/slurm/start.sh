#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine for r1flow's Slurm tests: Debian's
# slurm-wlm and munge, no systemd, every daemon started by hand. Idempotent: what runs
# already is left running; it exits 0 once the node takes jobs.
#
#   scripts/slurm/start.sh        # install if needed, configure, start, wait
#   scripts/slurm/stop.sh         # stop the daemons (--purge: and forget their state)
#
# State and logs: $R1FLOW_SLURM_STATE (default /tmp/r1flow-slurm); configuration:
# /etc/slurm/slurm.conf, rendered from slurm.conf.in beside this script.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${R1FLOW_SLURM_STATE:-/tmp/r1flow-slurm}
wait_s=${R1FLOW_SLURM_WAIT_S:-90}

say() { echo "[slurm] $*" >&2; }
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Packages. Debian starts nothing on install inside a container (policy-rc.d), which is
#    what we want: the daemons are started below.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
  || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# 2. munge: a key, its run directory, the daemon.
if [ ! -s /etc/munge/munge.key ]; then
  say "creating a munge key"
  as_root install -d -o munge -g munge -m 0700 /etc/munge
  as_root mungekey --create --keyfile=/etc/munge/munge.key
  as_root chown munge:munge /etc/munge/munge.key
  as_root chmod 0400 /etc/munge/munge.key
fi
as_root install -d -o munge -g munge -m 0755 /run/munge
as_root install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
if ! running /run/munge/munged.pid; then
  say "starting munged"
  as_root rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  as_root runuser -u munge -- /usr/sbin/munged
fi
for _ in $(seq 1 40); do
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then break; fi
  sleep 0.25
done
munge -n | unmunge >/dev/null || { say "munge does not work"; exit 1; }

# 3. Configuration for this host (its CPUs and memory from `slurmd -C`). A changed
#    configuration needs the daemons restarted (`scontrol reconfigure` ignores some keys).
host=$(hostname -s)
hardware=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
conf=$(sed -e "s|@HOST@|$host|g" -e "s|@HARDWARE@|$hardware|" -e "s|@STATE@|$state|g" \
  "$here/slurm.conf.in")
as_root mkdir -p /etc/slurm "$state/state" "$state/spool" "$state/run" "$state/log"
if [ "$conf" != "$(cat /etc/slurm/slurm.conf 2>/dev/null)" ]; then
  printf '%s\n' "$conf" | as_root tee /etc/slurm/slurm.conf >/dev/null
  as_root rm -f /etc/slurm/gres.conf
  for daemon in slurmd slurmctld; do
    pidfile="$state/run/$daemon.pid"
    if running "$pidfile"; then
      say "configuration changed: restarting $daemon"
      pid=$(cat "$pidfile")
      as_root kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
  done
fi

# 4. The daemons.
if ! running "$state/run/slurmctld.pid"; then say "starting slurmctld"; as_root slurmctld; fi
for _ in $(seq 1 "$wait_s"); do scontrol ping >/dev/null 2>&1 && break; sleep 1; done
if ! running "$state/run/slurmd.pid"; then say "starting slurmd"; as_root slurmd; fi

# 5. Until the node takes jobs (resuming it if an unclean stop left it down or drained).
deadline=$((SECONDS + wait_s))
node_state=
while [ $SECONDS -lt $deadline ]; do
  node_state=$(sinfo -h -N -n "$host" -o '%T' 2>/dev/null || true)
  case "$node_state" in
    idle|mixed|allocated|completing) say "node $host is $node_state"; exit 0 ;;
    drain*|down*|inval*|fail*)
      say "node $host is $node_state; resuming it"
      as_root scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
  esac
  sleep 1
done
say "node $host did not come up in ${wait_s}s (state: ${node_state:-unknown})"
tail -n 20 "$state/log/slurmctld.log" "$state/log/slurmd.log" >&2 || true
exit 1
