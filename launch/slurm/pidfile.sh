# Sourced by slurm-up.sh and slurm-down.sh: PID-file checks for the daemons they start and stop.
#
# alive PIDFILE COMM: the PID file names a live process called COMM. Orphaned daemons are reaped by
# PID 1 only a second or two after they exit, so a zombie counts as dead; the name check guards
# against PID reuse.
alive() {
  local pid stat state
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  state=${stat##*) }
  state=${state%% *}
  [ "$state" != Z ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}
