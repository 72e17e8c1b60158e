#!/bin/bash
# Runs an MPI launch of neftune so that a stop signal ends it with exit code 75 ("checkpointed: requeue
# me"), which schedulers and retry loops understand:
#
#   launch/mpirun-requeue.sh mpirun -np 8 build/bin/neftune train exp.yaml
#   launch/mpirun-requeue.sh mpirun --allow-run-as-root -np 2 build/bin/neftune serve --spool /spool
#
# The arguments are the whole launcher command line. Send SIGTERM or SIGUSR1 to this script (not to
# mpirun): it forwards SIGUSR1 to the launcher, mpirun passes it to every rank, the ranks finish their
# step, write a checkpoint and exit 75, and so does mpirun and then this script. Sent to mpirun itself,
# SIGTERM makes the ranks checkpoint all the same, but mpirun then exits 1: schedulers would not requeue.
# For the case where mpirun gets the signal too (a signal to the whole process group: `timeout`, `kill
# -- -PGID`), rank 0 creates the file $NEFTUNE_STOP_MARKER when it exits 75; this script sets it (a
# fresh temporary file, passed to remote ranks with mpirun -x) unless it is set already, and exits 75
# when it exists, whatever mpirun says. On multi-node runs whose rank 0 is not on this host, point
# NEFTUNE_STOP_MARKER to a shared filesystem for that fallback.
#
# Exit status: 75 when the run stopped for a signal after writing a checkpoint; 75 too when the ranks
# died of SIGUSR1 itself (status 138: it came during their first milliseconds, before neftune handles
# it, so nothing was lost that a checkpoint could have kept); otherwise the launcher's own status
# (0 done, 1 failure, 2 bad input). launch/slurm/train.sbatch does the same forwarding for Slurm jobs.

set -uo pipefail
say() { echo "[mpirun-requeue $(date +%H:%M:%S)] $*" >&2; }

if [ $# -lt 1 ]; then
  say "usage: $0 mpirun [mpirun options] neftune train CONFIG.yaml [...]"
  exit 2
fi

cmd=("$@")
own_marker=0
if [ -z "${NEFTUNE_STOP_MARKER:-}" ]; then
  NEFTUNE_STOP_MARKER=$(mktemp "${TMPDIR:-/tmp}/neftune-stop.XXXXXX") || { say "mktemp failed"; exit 1; }
  own_marker=1
fi
rm -f "$NEFTUNE_STOP_MARKER"  # only this run's ranks may create it
export NEFTUNE_STOP_MARKER
# Open MPI passes only the variables named with -x to ranks on other nodes.
case "$(basename "$1")" in
  mpirun | mpiexec | orterun)
    if "$1" --version 2>/dev/null | grep -q "Open MPI"; then cmd=("$1" -x NEFTUNE_STOP_MARKER "${@:2}"); fi ;;
esac
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() { [ "$own_marker" = 0 ] || rm -f "$NEFTUNE_STOP_MARKER"; }
trap cleanup EXIT

# Bash runs a trap only between commands, so the launcher runs in the background and the script waits;
# a trapped signal makes `wait` return early (status > 128) while the launcher keeps running.
child=
trapped=0
# shellcheck disable=SC2317  # called from the traps
forward() {
  trapped=1
  say "got SIG$1: asking the ranks to checkpoint and stop"
  [ -z "$child" ] || kill -USR1 "$child" 2>/dev/null || true
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM

"${cmd[@]}" &
child=$!
rc=0
while :; do
  trapped=0
  wait "$child"
  r=$?
  # 127: the launcher's status was already collected by the previous (signal-coinciding) wait.
  if [ "$r" -eq 127 ] && [ "$rc" -gt 128 ]; then break; fi
  rc=$r
  if [ "$trapped" = 0 ] || [ "$r" -le 128 ]; then break; fi  # else: only interrupted, the launcher still runs
done

if [ "$rc" -ne 75 ] && [ -e "$NEFTUNE_STOP_MARKER" ]; then
  say "the launcher exited $rc, but the ranks wrote a checkpoint and exited 75 (a signal reached it too)"
  rc=75
elif [ "$rc" -eq 138 ]; then
  say "the ranks were killed by SIGUSR1 during start-up, before neftune handles it: preempted as for 75"
  rc=75
fi
[ "$rc" -ne 75 ] || say "preempted: a checkpoint was written; run the same command again to resume"
exit "$rc"
