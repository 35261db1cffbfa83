#!/usr/bin/env bash
# Start a real single-node SLURM cluster on this host (munged, slurmctld, slurmd; no accounting).
# Idempotent: installs Debian's slurm-wlm and munge if missing, and starts only what is not running.
# Needs root. Used by tests/test_slurm.py; safe to run by hand.
set -euo pipefail

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))

# munge: a key owned by munge, mode 400, and its run directory; started as the munge user.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  if command -v mungekey >/dev/null; then mungekey -c -f -k /etc/munge/munge.key; else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 400 /etc/munge/munge.key
chmod 755 /run/munge
if ! pgrep -x munged >/dev/null; then
  su -s /bin/sh munge -c "munged"
fi

conf_dir=/etc/slurm
mkdir -p "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >"$conf_dir/slurm.conf" <<CONF
ClusterName=etasvae-test
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
ReturnToService=2
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# Debian's packages read /etc/slurm; some builds look in /etc/slurm-llnl.
mkdir -p /etc/slurm-llnl && cp "$conf_dir/slurm.conf" /etc/slurm-llnl/slurm.conf

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 1 30); do
  if sinfo -h -o "%T" 2>/dev/null | grep -qE "idle|mixed|allocated"; then
    exit 0
  fi
  scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "SLURM did not come up; sinfo says: $(sinfo 2>&1)" >&2
exit 1
