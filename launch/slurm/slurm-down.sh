#!/usr/bin/env bash
# Stops the single-node Slurm cluster that launch/slurm/slurm-up.sh started: cancels every job and waits
# for it to end, then stops slurmd, slurmctld and munged (munged only if slurm-up.sh started it).
# Idempotent: with nothing running it says so and exits 0. Uninstalls nothing (purging libmunge2 would
# take Open MPI with it, through libpmix2).
#
# Usage: launch/slurm/slurm-down.sh [--purge] [--keep-munge]
#   --purge       also delete the state folder (config, state, logs)
#   --keep-munge  leave munged running (slurm-up.sh uses this to restart Slurm after a config change)
# Environment: NEFTUNE_SLURM_DIR as for slurm-up.sh [/tmp/neftune-slurm].
#
# Processes are found only through the PID files in the state folder, never by name, and a PID is
# signalled only while /proc/PID/comm still names the daemon (PIDs wrap around).
set -uo pipefail

DIR=${NEFTUNE_SLURM_DIR:-/tmp/neftune-slurm}
export SLURM_CONF=$DIR/slurm.conf
purge=0
keep_munge=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    --keep-munge) keep_munge=1 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "slurm-down.sh: unknown option '$arg' (known: --purge --keep-munge)" >&2; exit 2 ;;
  esac
done
log() { echo "[slurm-down] $*"; }

# shellcheck source=launch/slurm/pidfile.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pidfile.sh"  # alive PIDFILE COMM

stop() {  # stop NAME: SIGTERM, up to 15 s, then SIGKILL
  local name=$1 pidfile=$DIR/$1.pid pid
  if ! alive "$pidfile" "$name"; then
    log "$name: not running"
    rm -f "$pidfile"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    alive "$pidfile" "$name" || break
    sleep 0.1
  done
  if alive "$pidfile" "$name"; then
    log "$name: still running after 15 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pidfile" "$name" || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
  log "$name: stopped (pid $pid)"
}

# Jobs first, while slurmctld and slurmd still run: their slurmstepd processes end with them.
if alive "$DIR/slurmctld.pid" slurmctld && [ -f "$SLURM_CONF" ]; then
  jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    killwait=$(sed -n 's/^KillWait=//p' "$SLURM_CONF" 2>/dev/null)
    for _ in $(seq $(((${killwait:-30} + 15) * 5))); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
    [ -z "$(squeue -h -o %i 2>/dev/null)" ] || log "warning: jobs still listed: $(squeue -h -o '%i %T' | tr '\n' ' ')"
  fi
fi
stop slurmd
stop slurmctld
if [ "$keep_munge" = 0 ]; then
  if [ -f "$DIR/munged.pid" ]; then
    stop munged
  elif munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged: not started by slurm-up.sh, left alone"
  else
    log "munged: not running"
  fi
fi
if [ "$purge" = 1 ]; then
  rm -rf "$DIR"
  log "removed $DIR"
fi
exit 0
