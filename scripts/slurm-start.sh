#!/bin/sh
# Installs Debian's slurm-wlm and munge if missing and starts a single-node
# Slurm cluster on this machine, without systemd, for the Slurm tests.
# Records the pids it started in $STATE (default /tmp/xtask-slurm/pids);
# scripts/slurm-stop.sh stops exactly those.
set -eu

STATE_DIR=${XTASK_SLURM_STATE:-/tmp/xtask-slurm}
mkdir -p "$STATE_DIR"
PIDS=$STATE_DIR/pids
# Only what this run starts is recorded (and later stopped): a cluster that
# was already up is left alone.
: > "$PIDS"

log() { printf 'slurm-start: %s\n' "$*"; }
# Whether the pid in file $1 is a live process (not a zombie).
running() {
    [ -s "$1" ] || return 1
    state=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) || return 1
    case "$state" in Z*|"") return 1 ;; esac
}

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq -o DPkg::Lock::Timeout=600
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
        slurm-wlm munge >/dev/null
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)

# munge: a key, its run folder, and the daemon as the munge user.
if [ ! -s /etc/munge/munge.key ]; then
    log "creating the munge key"
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    sleep 0.2
    cat /run/munge/munged.pid >> "$PIDS"
fi

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
cat > /etc/slurm/slurm.conf <<CONF
# Written by scripts/slurm-start.sh: a single-node cluster for tests.
ClusterName=xtask
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# Start each job at once, not up to 3 s later.
SchedulerParameters=batch_sched_delay=0
# Reject a job the partition cannot run, instead of leaving it pending forever.
EnforcePartLimits=ALL
# Keep finished jobs visible to scontrol for an hour.
MinJobAge=3600
ReturnToService=2
KillWait=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

if ! scontrol ping >/dev/null 2>&1; then
    /usr/sbin/slurmctld
    for _ in $(seq 1 100); do [ -s /run/slurm/slurmctld.pid ] && break; sleep 0.05; done
    cat /run/slurm/slurmctld.pid >> "$PIDS"
fi
if ! running /run/slurm/slurmd.pid; then
    /usr/sbin/slurmd
    for _ in $(seq 1 100); do [ -s /run/slurm/slurmd.pid ] && break; sleep 0.05; done
    cat /run/slurm/slurmd.pid >> "$PIDS"
fi

# Ready when the node takes jobs.
for _ in $(seq 1 200); do
    state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n 1)
    case "$state" in
        idle|mix|alloc) log "cluster up: node $host ($cpus CPUs, $mem_mb MB), partition debug"; exit 0 ;;
    esac
    sleep 0.1
done
log "the node did not become idle; see /var/log/slurm/"
scontrol show node "$host" || true
exit 1
