# shellcheck shell=bash
# Sourced by .ci/run and launch/test.sh. timed NAME COMMAND...: runs COMMAND; when $NEFTUNE_CI_TIMES names
# a file (.ci/run sets it), appends "WHO<tab>NAME<tab>SECONDS" to it (.ci/split.py prints them). The exit
# status is COMMAND's.
timed() {
  local name=$1 t0 rc=0
  shift
  t0=$(date +%s.%N)
  "$@" || rc=$?
  if [ -n "${NEFTUNE_CI_TIMES:-}" ]; then
    printf '%s\t%s\t%s\n' "$(basename "$0")" "$name" \
      "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" >>"$NEFTUNE_CI_TIMES"
  fi
  return $rc
}
