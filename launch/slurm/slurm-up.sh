#!/usr/bin/env bash
# Brings up a single-node Slurm cluster (munged + slurmctld + slurmd) on this machine: for CI and for
# trying launch/slurm/*.sbatch on a workstation. Debian 12, run as root; no systemd needed (the daemons
# are started by hand). Idempotent: a second run only checks that everything is up (under a second); a changed
# configuration restarts the two Slurm daemons.
#
# Usage:  launch/slurm/slurm-up.sh
#         export SLURM_CONF=${NEFTUNE_SLURM_DIR:-/tmp/neftune-slurm}/slurm.conf   # for sbatch, squeue, ...
#         launch/slurm/slurm-down.sh [--purge]                                   # stop it again
#
# Environment:
#   NEFTUNE_SLURM_DIR       config, state, PID files and logs (log/)          [/tmp/neftune-slurm]
#   NEFTUNE_SLURM_CPUS      CPUs the node offers (may exceed the real count)   [nproc, at least 2]
#   NEFTUNE_SLURM_NODE      the node's name                                    [hostname -s]
#   NEFTUNE_SLURM_PORT      slurmctld's port; slurmd listens on PORT+1          [6817]
#   NEFTUNE_SLURM_KILLWAIT  seconds between SIGTERM and SIGKILL of a job      [30]
#   NEFTUNE_SLURM_INSTALL   1: apt-get install what is missing; 0: never        [1]
#
# Exit codes: 0 up (node idle); 1 a daemon failed to start (its log tail is printed);
#             3 Slurm cannot run here (not root, packages missing and not installable, port taken by a
#               Slurm that is not ours): callers such as tests/slurm treat this as "skip".
#
# What it does (the reasons are in the comments below): installs munge, slurmctld, slurmd, slurm-client,
# the basic plugins, libpmix-dev and Open MPI with apt when missing (policy-rc.d keeps the postinst from
# starting anything); writes slurm.conf into the state folder; starts munged as user munge, then
# slurmctld -c (clean state) and slurmd on 127.0.0.1; waits until the node is idle.
set -euo pipefail

DIR=${NEFTUNE_SLURM_DIR:-/tmp/neftune-slurm}
NODE=${NEFTUNE_SLURM_NODE:-$(hostname -s)}
CTLD_HOST=$(hostname -s)  # slurmctld refuses to run unless SlurmctldHost is this host
PORT=${NEFTUNE_SLURM_PORT:-6817}
KILLWAIT=${NEFTUNE_SLURM_KILLWAIT:-30}
INSTALL=${NEFTUNE_SLURM_INSTALL:-1}
CPUS=${NEFTUNE_SLURM_CPUS:-$(nproc)}
[ "$CPUS" -ge 2 ] || CPUS=2  # the tests run 2-rank jobs; SlurmdParameters=config_overrides allows more than the hardware
CONF=$DIR/slurm.conf
LOGDIR=$DIR/log
export SLURM_CONF=$CONF
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "[slurm-up] $*"; }
unavailable() { echo "[slurm-up] Slurm unavailable: $*" >&2; exit 3; }
show_logs() {
  local f
  for f in "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" "$LOGDIR/munged.log"; do
    [ -e "$f" ] || continue
    echo "---- tail $f" >&2
    tail -n 15 "$f" >&2 || true
  done
}
die() { echo "[slurm-up] ERROR: $*" >&2; show_logs; exit 1; }
trap 'echo "[slurm-up] ERROR: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

# shellcheck source=launch/slurm/pidfile.sh
source "$HERE/pidfile.sh"  # alive PIDFILE COMM
port_busy() {  # something listens on TCP port $1 (read from /proc: no iproute2 needed, no connection made)
  awk -v p=":$(printf '%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
# Startup failures show up as "fatal" in the daemon's log lines written since OFFSET.
new_fatal() { tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -m1 -i 'fatal' || true; }

[ "$(id -u)" -eq 0 ] || unavailable "needs root (slurmd and munged are started by hand)"
mkdir -p "$DIR" "$LOGDIR"

# ---- packages ----
# libpmix-dev, not only libpmix2: Slurm's mpi_pmix_v4.so dlopens the unversioned libpmix.so that only
# the -dev package ships; without it every srun fails (MpiDefault=pmix) with "Invalid MPI type 'pmix'".
pkgs=(munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins libpmix-dev openmpi-bin libopenmpi-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$INSTALL" = 1 ] || unavailable "missing packages ${missing[*]} (and NEFTUNE_SLURM_INSTALL=0)"
  command -v apt-get >/dev/null || unavailable "missing packages ${missing[*]} and no apt-get"
  log "installing: ${missing[*]} (log: $LOGDIR/apt.log)"
  # The postinst scripts would start munge/slurmd/slurmctld through invoke-rc.d; policy-rc.d (exit 101)
  # stops that. Created only for the install when the image does not have one already.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  rc=0
  {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q &&
      apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
  } >>"$LOGDIR/apt.log" 2>&1 || rc=$?
  [ "$made_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" -eq 0 ] || { tail -n 5 "$LOGDIR/apt.log" >&2; unavailable "apt-get could not install ${missing[*]}"; }
fi
for b in munged munge unmunge slurmctld slurmd sinfo scontrol sbatch; do
  command -v "$b" >/dev/null || unavailable "$b not found after installing"
done
id munge >/dev/null 2>&1 || unavailable "no 'munge' user (the munge package's postinst creates it)"

# ---- names ----
# slurmctld checks that it runs on SlurmctldHost, so that name must resolve; all traffic uses 127.0.0.1.
if ! getent hosts "$CTLD_HOST" >/dev/null; then
  log "adding '127.0.0.1 $CTLD_HOST' to /etc/hosts"
  echo "127.0.0.1 $CTLD_HOST" >>/etc/hosts
fi

# ---- munge ----
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_ok; then
  if alive "$DIR/munged.pid" munged; then log "munged: already running"; else log "munged: using the one already running"; fi
else
  rm -f "$DIR/munged.pid"
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    install -d -o munge -g munge -m 0700 /etc/munge
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
  fi
  # /run is not persistent here and nothing else creates munged's socket folder; munged must run as munge.
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  off=$(log_size /var/log/munge/munged.log)
  runuser -u munge -- munged || true  # forks into the background; failures are in its log
  ln -sfn /var/log/munge/munged.log "$LOGDIR/munged.log"
  for _ in $(seq 100); do munge_ok && break; sleep 0.1; done
  munge_ok || die "munged failed: $(new_fatal /var/log/munge/munged.log "$off")"
  cp /run/munge/munged.pid "$DIR/munged.pid"  # only a munged we started is stopped by slurm-down.sh
  log "munged: started (pid $(cat "$DIR/munged.pid"))"
fi

# ---- slurm.conf ----
mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
new=$(
  cat <<EOF
# Written by launch/slurm/slurm-up.sh: a single-node cluster for CI. Edits are overwritten.
ClusterName=neftune-ci
SlurmctldHost=$CTLD_HOST
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job may start again only once its old credential has expired (default 120 s: slurmd
# refuses an earlier relaunch with "Job credential revoked" and the job FAILS). 10 s keeps the CI
# preemption tests short; a credential is used within a second or two of its creation on one node.
AuthInfo=cred_expire=10
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No systemd and cgroup v1 controllers mounted beside cgroup2: every cgroup plugin is off.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Debian's Open MPI speaks PMIx only (no PMI-1/PMI-2): srun --mpi=pmix is the default.
MpiDefault=pmix
SchedulerType=sched/backfill
# Start batch jobs at once (default: up to 3 s later), and look at pending jobs every 2 s (default 60 s
# for the main loop, 30 s for backfill): a requeued job becomes eligible by the clock, with no event
# that would trigger a scheduling pass.
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
# Finished jobs stay visible to scontrol for 5 s (to ~65 s: the purge runs every minute). sbatch --wait
# backs off its polling (2 s, x4, up to 32 s) only while the sleep is under MinJobAge/2, so 5 keeps it
# polling every 2 s. (Slurm 22.05 raises anything below 2 to 2; 0 does not mean "never purge".)
MinJobAge=5
KillWait=$KILLWAIT
JobRequeue=1
ReturnToService=2
InactiveLimit=0
MailProg=/bin/true
# Accept CPUS=$CPUS even where the hardware has fewer.
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem_mb State=UNKNOWN
PartitionName=ci Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)
restart=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$new" ]; then
  [ ! -f "$CONF" ] || restart=1
  printf '%s\n' "$new" >"$CONF"
fi
mkdir -p "$DIR/ctld" "$DIR/slurmd"
echo "export SLURM_CONF=$CONF" >"$DIR/env"
if [ "$restart" = 1 ] && { alive "$DIR/slurmctld.pid" slurmctld || alive "$DIR/slurmd.pid" slurmd; }; then
  log "slurm.conf changed: restarting slurmctld and slurmd"
  bash "$HERE/slurm-down.sh" --keep-munge
fi

# ---- slurmctld, slurmd ----
start_daemon() {  # start_daemon NAME PORT CMD...
  local name=$1 port=$2 off fatal
  shift 2
  if alive "$DIR/$name.pid" "$name"; then
    log "$name: already running (pid $(cat "$DIR/$name.pid"))"
    return
  fi
  port_busy "$port" && unavailable "port $port is taken by another program (a Slurm not started by this script?); set NEFTUNE_SLURM_PORT"
  rm -f "$DIR/$name.pid"
  off=$(log_size "$LOGDIR/$name.log")
  "$@" || die "$name exited with $?"
  for _ in $(seq 100); do
    fatal=$(new_fatal "$LOGDIR/$name.log" "$off")
    [ -z "$fatal" ] || die "$name failed: $fatal"
    if alive "$DIR/$name.pid" "$name" && port_busy "$port"; then
      log "$name: started (pid $(cat "$DIR/$name.pid"))"
      return
    fi
    sleep 0.1
  done
  die "$name did not come up within 10 s"
}
start_daemon slurmctld "$PORT" slurmctld -c -f "$CONF"  # -c: clean state, no jobs carried over
start_daemon slurmd "$((PORT + 1))" slurmd -f "$CONF" -N "$NODE"

# ---- wait for the node ----
resumed=0
for _ in $(seq 300); do
  state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n 1 || true)
  case "$state" in
    idle | mixed | allocated | completing)
      log "node $NODE: $state; $CPUS CPUs, partition ci (export SLURM_CONF=$CONF)"
      exit 0
      ;;
    *drain* | down*)
      if [ "$resumed" = 0 ]; then
        log "node $NODE is $state ($(scontrol show node "$NODE" | grep -o 'Reason=.*' || true)): resuming it"
        scontrol update nodename="$NODE" state=resume || true
        resumed=1
      fi
      ;;
  esac
  sleep 0.1
done
die "node $NODE not idle after 30 s (state: ${state:-unknown})"
