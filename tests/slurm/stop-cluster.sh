#!/usr/bin/env bash
# Stop the cluster that tests/slurm/start-cluster.sh DIR started: its jobs, then slurmd, slurmctld and
# munged, each by the pid in its pid file under DIR, waiting until each has exited. Leaves DIR (logs) in
# place.
set -uo pipefail
dir=$(realpath -m "${1:?usage: stop-cluster.sh DIR}")

status=0
# Jobs still queued or running (a test that timed out) are cancelled first, so that no job step outlives slurmd.
if [ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
  SLURM_CONF="$dir/slurm.conf" scancel --user="$(id -un)" 2>/dev/null || true
  for _ in $(seq 1 50); do
    [ -z "$(SLURM_CONF="$dir/slurm.conf" squeue -h -t PD,R,CG 2>/dev/null)" ] && break
    sleep 0.2
  done
fi
for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || continue
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "pid $pid ($pidfile) did not stop on SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
    status=1
  fi
done
exit $status
