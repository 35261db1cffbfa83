#!/usr/bin/env bash
# Start a real single-node SLURM cluster on this host (munged, slurmctld, slurmd; no accounting) with every
# file it writes (configuration, munge key and socket, spool, logs, pid files) under one directory:
#
#   tests/slurm/start-cluster.sh DIR && export SLURM_CONF=DIR/slurm.conf PATH=DIR/bin:$PATH   # sbatch, ...
#   tests/slurm/stop-cluster.sh DIR                                        # stops the three daemons
#
# Installs Debian's slurm-wlm and munge if missing (apt-get). Needs root. Used by tests/test_slurm.py.
set -euo pipefail
dir=$(realpath -m "${1:?usage: start-cluster.sh DIR}")

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi

host=$(hostname -s)
# The host's processors (nproc would honour OMP_NUM_THREADS), at least 2: the profile runs training on 2.
cpus=$(getconf _NPROCESSORS_ONLN)
cpus=$(( cpus > 2 ? cpus : 2 ))
# 80 % of the host's memory, but at least 16 GB so that the profile's 8 GB training jobs can be scheduled on a
# small CI machine: the node declares these (SlurmdParameters=config_overrides) and nothing enforces them.
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
mem_mb=$(( mem_mb > 16384 ? mem_mb : 16384 ))

# Free ports of its own, so that it runs beside another cluster on this host.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }
ctld_port=$(free_port)
slurmd_port=$(free_port)

mkdir -p "$dir/munge" "$dir/spool/slurmctld" "$dir/spool/slurmd" "$dir/log" "$dir/bin"
chmod 700 "$dir" "$dir/munge"
socket="$dir/munge/munge.socket"

# munge: a fresh key (mode 400) and its own socket; --force accepts running as root and a key under /tmp.
dd if=/dev/urandom bs=1 count=1024 of="$dir/munge/munge.key" 2>/dev/null
chmod 400 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$socket" --pid-file="$dir/munge/munged.pid" \
  --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"

cat >"$dir/slurm.conf" <<CONF
ClusterName=etasvae-test
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$dir/spool/slurmctld
SlurmdSpoolDir=$dir/spool/slurmd
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay visible to scontrol for an hour: the test reads every job's allocation at the end.
MinJobAge=3600
NodeName=$host CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

# Snakemake's job step clears SLURM_* variables, SLURM_CONF included, before it calls srun inside a job:
# DIR/bin/srun (put DIR/bin first on PATH) calls the real srun with this cluster's configuration.
cat >"$dir/bin/srun" <<SRUN
#!/bin/sh
SLURM_CONF="$SLURM_CONF" exec $(command -v srun) "\$@"
SRUN
chmod 755 "$dir/bin/srun"

for _ in $(seq 1 30); do
  if sinfo -h -o "%T" 2>/dev/null | grep -qE "idle|mixed|allocated"; then
    exit 0
  fi
  scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "SLURM did not come up; sinfo says: $(sinfo 2>&1)" >&2
tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" "$dir/log/munged.log" >&2 || true
exit 1
