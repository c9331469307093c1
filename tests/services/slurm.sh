#!/usr/bin/env bash
# A single-node Slurm on this machine, for AWE's Slurm DPU tests. Idempotent; run as root.
#
# Installs slurm-wlm and munge from Debian when missing, writes /etc/slurm/slurm.conf for
# this host (short hostname, CPUs and RealMemory as `slurmd -C` measures them), starts
# munged, slurmctld and slurmd, and waits until `sinfo` shows the node idle. Run it again
# at any time: what runs is left running; a stopped daemon is started; a changed
# slurm.conf restarts the daemons (queued and running jobs survive, they are kept in
# StateSaveLocation).
#
# Made for a VM or container without systemd. Memory is a consumable resource
# (CR_Core_Memory, DefMemPerCPU) and --mem is enforced one of two ways, whichever this
# machine allows (the script probes):
# - cgroup v1 with a writable memory controller (this project's VMs): proctrack/cgroup and
#   task/cgroup with ConstrainRAMSpace; the kernel OOM-kills a job over its --mem and Slurm
#   records OUT_OF_MEMORY;
# - otherwise proctrack/linuxproc and task/none, with jobacct_gather/linux sampling RSS
#   every second and OverMemoryKill: the job is killed, but Slurm records it FAILED
#   (reason JobLaunchFailure), with "exceeded memory limit" in the job's output; a job that
#   allocates fast between two samples may get a little over before it is killed.
# - no slurmdbd: AccountingStorageType=accounting_storage/none, so `sacct` has nothing;
#   finished jobs stay visible to `squeue`/`scontrol show job` for MinJobAge seconds, and
#   jobcomp/filetxt keeps a line per finished job in /var/log/slurm/jobcomp.log;
# - tuned for quick tests: one-second scheduling, short timeouts.
set -euo pipefail

CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd

need_packages=()
[ -x /usr/sbin/slurmctld ] || need_packages+=(slurmctld)
[ -x /usr/sbin/slurmd ] || need_packages+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need_packages+=(slurm-client)
[ -x /usr/sbin/munged ] || need_packages+=(munge)
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "Installing ${need_packages[*]}..."
  apt-get update -qq
  # Another installation may hold the dpkg lock for a while: wait for it, do not fail.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    "${need_packages[@]}" >/dev/null
fi

# ---- munge ----
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
  echo "Creating the munge key..."
  dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
munge_up() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_up; then
  echo "Starting munged..."
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 50); do munge_up && break; sleep 0.1; done
  munge_up || { echo "munged did not start; see /var/log/munge/munged.log" >&2; exit 1; }
fi

# ---- slurm.conf ----
host=$(hostname -s)
# Can Slurm make cgroups here? cgroup v1 with a memory controller we may write to.
cgroup_probe=/sys/fs/cgroup/memory/awe_slurm_probe.$$
if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] && mkdir "$cgroup_probe" 2>/dev/null; then
  rmdir "$cgroup_probe"
  proctrack=proctrack/cgroup task_plugin=task/cgroup over_memory=NoOverMemoryKill
  cgroup_conf="CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes"
  memory_note="cgroup v1: the kernel OOM-kills a job over --mem (OUT_OF_MEMORY)"
else
  proctrack=proctrack/linuxproc task_plugin=task/none over_memory=OverMemoryKill
  cgroup_conf="CgroupPlugin=autodetect"
  memory_note="no usable cgroups: RSS sampled each second, a job over --mem killed (FAILED)"
fi
# `slurmd -C` prints this machine's node line (CPUs, sockets, cores, threads, RealMemory).
node_line=$(slurmd -C | head -n 1)
case "$node_line" in
  NodeName=*) ;;
  *) echo "slurmd -C gave no node line: $node_line" >&2; exit 1 ;;
esac
mkdir -p "$CONF_DIR" "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR"
new_conf=$(mktemp)
cat >"$new_conf" <<EOF
# Written by AWE's tests/services/slurm.sh: a single-node Slurm for the test suite.
ClusterName=awe
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=${STATE_DIR}
SlurmdSpoolDir=${SPOOL_DIR}
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Memory enforcement: ${memory_note}.
ProctrackType=${proctrack}
TaskPlugin=${task_plugin}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=${over_memory}
# No slurmdbd: finished jobs are kept by slurmctld (MinJobAge) and in the jobcomp file.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${LOG_DIR}/jobcomp.log
MinJobAge=3600
MaxJobCount=100000
# Quick: schedule every second, short timeouts, no grace after a time limit.
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1,sched_min_interval=100000,default_queue_depth=1000
MessageTimeout=5
SlurmdTimeout=30
SlurmctldTimeout=30
InactiveLimit=0
KillWait=2
OverTimeLimit=0
ReturnToService=2
MpiDefault=none
${node_line} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
changed=0
if ! cmp -s "$new_conf" "$CONF_DIR/slurm.conf"; then
  install -m 0644 "$new_conf" "$CONF_DIR/slurm.conf"
  changed=1
fi
rm -f "$new_conf"
if [ "$(cat "$CONF_DIR/cgroup.conf" 2>/dev/null)" != "$cgroup_conf" ]; then
  printf '%s\n' "$cgroup_conf" >"$CONF_DIR/cgroup.conf"
  changed=1
fi

# ---- daemons ----
# A daemon runs when the pid in its pid file is alive and is that daemon.
running() {
  local pid
  pid=$(cat "/run/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}
if [ "$changed" = 1 ]; then
  for daemon in slurmd slurmctld; do
    if running "$daemon"; then
      echo "Slurm configuration changed: stopping $daemon..."
      kill "$(cat "/run/$daemon.pid")" || true
      for _ in $(seq 1 100); do running "$daemon" || break; sleep 0.1; done
    fi
  done
fi
if ! running slurmctld; then
  echo "Starting slurmctld..."
  /usr/sbin/slurmctld
fi
if ! running slurmd; then
  echo "Starting slurmd..."
  /usr/sbin/slurmd
fi

node_state() { sinfo --noheader --nodes="$host" --format=%T 2>/dev/null | head -n 1; }
for _ in $(seq 1 120); do
  state=$(node_state)
  case "$state" in
    idle | mixed | allocated | completing) break ;;
    # Down or drained after an unclean stop, and slurmd answers again: back to service.
    down | drained | draining) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
case "$(node_state)" in
  idle | mixed | allocated | completing) ;;
  *)
    echo "Slurm node $host is not up: sinfo says '$(node_state)'." >&2
    echo "See $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log" >&2
    exit 1
    ;;
esac
echo "Slurm is up: node $host $(sinfo --noheader --nodes="$host" --format='%T, %c CPUs, %m MB'); memory: $memory_note"
