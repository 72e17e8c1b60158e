#!/usr/bin/env bash
# Slurm integration test (ctest label `slurm`): brings up a single-node cluster with
# launch/slurm/slurm-up.sh and runs launch/slurm/train.sbatch on it with 2 ranks:
#   a) a short job under `sbatch --wait`: exit 0, final/ written, one metrics line per step;
#   b) a long job preempted with `scancel --signal=USR1` (srun launcher: reaches the ranks directly):
#      the ranks checkpoint and exit 75, the script requeues the job, the requeued run resumes from the
#      checkpoint (metrics steps continue 1..K, K+1..M) and finishes with exit 0;
#   c) the same with NEFTUNE_LAUNCHER=mpirun and `scancel --batch --signal=USR1` (reaches the batch
#      script only, whose trap forwards it to mpirun, which forwards it to the ranks);
#   d) a bad config: exit 2 passed through, no requeue;
#   e) a plain `scancel JOBID` (SIGTERM): the ranks checkpoint and exit 75, the job ends CANCELLED and
#      is not requeued;
#   f) only with NEFTUNE_SLURM_TEST_TIMELIMIT=1 (adds 1-2 min): a job with --time=2 and
#      --signal=B:USR1@30 gets the signal from Slurm itself before its time limit and is requeued.
# Tears the cluster down at the end. Exits 77 (ctest SKIP) when Slurm cannot run here.
#
# Usage: test_slurm.sh NEFTUNE_BINARY      (as root)
# Environment: NEFTUNE_SLURM_DIR (see slurm-up.sh), NEFTUNE_SLURM_KEEP=1 leaves the cluster up.
set -uo pipefail

T0=$(date +%s.%N)
BIN=${1:?usage: test_slurm.sh NEFTUNE_BINARY}
BIN=$(readlink -f "$BIN")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SLURM_DIR_=${NEFTUNE_SLURM_DIR:-/tmp/neftune-slurm}
export NEFTUNE_SLURM_DIR=$SLURM_DIR_
export SLURM_CONF=$SLURM_DIR_/slurm.conf
export NEFTUNE_BIN=$BIN  # sbatch passes the environment on to the job
unset NEFTUNE_LAUNCHER NEFTUNE_LAUNCHER_ARGS NEFTUNE_MAX_REQUEUES
SBATCH=$ROOT/launch/slurm/train.sbatch

say() { echo "[test_slurm +$(elapsed)s] $*"; }
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
skip() { echo "[test_slurm] SKIP: $*"; exit 77; }
failures=0
check() {  # check DESCRIPTION COMMAND...: records a failure, goes on
  if "${@:2}"; then say "ok: $1"; else say "FAIL: $1"; failures=$((failures + 1)); fi
}
fatal() { say "FAIL: $*"; failures=$((failures + 1)); exit 1; }

[ -x "$BIN" ] || fatal "neftune binary '$BIN' not found"
[ "$(id -u)" -eq 0 ] || skip "needs root to start munged/slurmctld/slurmd (running as $(id -un))"

WORK=$(mktemp -d /tmp/neftune-slurm-test.XXXXXX)
up=0
WAITER=
finish() {
  local rc=$?
  [ -z "$WAITER" ] || kill "$WAITER" 2>/dev/null  # a background sbatch --wait would poll a stopped slurmctld forever
  if [ "$up" = 1 ] && [ "${NEFTUNE_SLURM_KEEP:-0}" != 1 ]; then
    bash "$ROOT/launch/slurm/slurm-down.sh" | sed 's/^/  /'
  fi
  if [ "$rc" -eq 77 ]; then
    rm -rf "$WORK"
  elif [ "$failures" -eq 0 ] && [ "$rc" -eq 0 ]; then
    rm -rf "$WORK"
    echo "[test_slurm] PASSED; wall time of the whole Slurm test: $(elapsed) s"
  else
    echo "[test_slurm] FAILED ($failures check(s)); job logs and outputs kept in $WORK;" \
      "daemon logs in $SLURM_DIR_/log; wall time $(elapsed) s"
    [ "$rc" -ne 0 ] || rc=1
  fi
  exit "$rc"
}
trap finish EXIT

# ---- bring Slurm up ----
say "slurm-up.sh (state in $SLURM_DIR_)"
bash "$ROOT/launch/slurm/slurm-up.sh" 2>&1 | sed 's/^/  /'
rc=${PIPESTATUS[0]}
[ "$rc" -ne 3 ] || skip "Slurm cannot be installed or started on this machine (slurm-up.sh exit 3, reason above)"
up=1
[ "$rc" -eq 0 ] || fatal "slurm-up.sh exited with $rc"

# ---- helpers ----
write_config() {  # write_config FILE OUTPUT_DIR MAX_STEPS
  cat >"$1" <<EOF
output_dir: $2
model: {init: {dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, hidden_dim: 48}}
data: {builtin_train_size: 64, builtin_eval_size: 8, max_seq_len: 200}
train: {micro_batch_size: 2, max_steps: $3, lr: 1.0e-3}
checkpoint: {every_steps: 50}
logging: {progress: off}
EOF
}
# The "step" of every optimizer-step line of metrics.jsonl (eval lines carry eval_loss, not loss), one a line.
steps_of() { grep '"loss"' "$1/metrics.jsonl" 2>/dev/null | grep -o '"step": *[0-9]*' | grep -o '[0-9]*$'; }
n_steps() { steps_of "$1" | wc -l; }
job_field() { scontrol show job "$1" 2>/dev/null | grep -o "\b$2=[^ ]*" | head -n 1 | cut -d= -f2; }
same_lines() { [ "$1" = "$2" ]; }
has_line() { grep -q -- "$2" "$1"; }
lacks_line() { ! grep -q -- "$2" "$1"; }
is_dir() { [ -d "$1" ]; }
is_eq() { [ "$1" = "$2" ]; }
# Waits up to $1 s for WAITER (the background sbatch --wait) and sets rc to its status.
wait_waiter() {
  local i
  for ((i = 0; i < $1 * 5; i++)); do
    kill -0 "$WAITER" 2>/dev/null || break
    sleep 0.2
  done
  kill -0 "$WAITER" 2>/dev/null && fatal "job $JOB still not finished after $1 s: $(scontrol show job "$JOB" | grep -o 'JobState=.*Reason=[^ ]*')"
  wait "$WAITER"
  rc=$?
  WAITER=
}

# Submits in the background under `sbatch --wait` (which waits through requeues for the job's final end)
# and sets JOB (id) and WAITER (pid of that sbatch, whose status is the job's final exit code).
submit_bg() {  # submit_bg NAME SBATCH_ARGUMENTS...
  local name=$1
  shift
  sbatch --wait --parsable --chdir="$WORK" -o "$WORK/$name.out" "$@" >"$WORK/$name.id" 2>"$WORK/$name.sbatch.err" &
  WAITER=$!
  JOB=
  for _ in $(seq 100); do
    JOB=$(head -n 1 "$WORK/$name.id" 2>/dev/null | cut -d';' -f1)
    [ -z "$JOB" ] || break
    sleep 0.1
  done
  [ -n "$JOB" ] || fatal "$name: sbatch did not submit: $(cat "$WORK/$name.sbatch.err")"
}

# ---- a) a short 2-rank job ----
say "a) 2 ranks, 40 steps, sbatch --wait"
write_config "$WORK/a.yaml" "$WORK/a" 40
timeout 300 sbatch --wait --chdir="$WORK" -o "$WORK/a.out" "$SBATCH" a.yaml >/dev/null
rc=$?
check "a: sbatch --wait exit code $rc == 0" is_eq "$rc" 0
check "a: final/ written" is_dir "$WORK/a/final"
check "a: 40 step lines in metrics.jsonl (got $(n_steps "$WORK/a"))" same_lines "$(steps_of "$WORK/a")" "$(seq 1 40)"
check "a: trained on 2 ranks (checkpoint shards: $(ls "$WORK"/a/checkpoints/step-*/rank-*-of-00002.safetensors 2>/dev/null | wc -l))" \
  is_eq "$(ls "$WORK"/a/checkpoints/step-*/rank-*-of-00002.safetensors 2>/dev/null | wc -l)" 2
[ "$failures" -eq 0 ] || { cat "$WORK/a.out"; fatal "a: the basic job failed, not trying the rest"; }

# ---- b, c) preemption: checkpoint, exit 75, requeue, resume ----
preempt_case() {  # preempt_case NAME LAUNCHER SCANCEL_OPTIONS...
  local name=$1 launcher=$2 seen k m restarts state rc
  shift 2
  say "$name) launcher $launcher, 2000 steps, preempted with: scancel ${*:+$* }--signal=USR1"
  write_config "$WORK/$name.yaml" "$WORK/$name" 2000
  NEFTUNE_LAUNCHER=$launcher submit_bg "$name" "$SBATCH" "$name.yaml"
  for _ in $(seq 1200); do
    [ "$(n_steps "$WORK/$name")" -lt 5 ] || break
    [ "$(job_field "$JOB" JobState)" != FAILED ] || break
    sleep 0.1
  done
  seen=$(n_steps "$WORK/$name")
  [ "$seen" -ge 5 ] || { cat "$WORK/$name.out"; fatal "$name: job $JOB did not reach 5 steps in 120 s"; }
  say "$name: job $JOB at step $seen: scancel ${*:+$* }--signal=USR1 $JOB"
  scancel "$@" --signal=USR1 "$JOB"
  # The ranks checkpoint and exit 75; the script requeues. Slurm holds a requeued job until its old
  # credential has expired (AuthInfo=cred_expire, 10 s in slurm-up.sh's config; releasing it earlier
  # makes slurmd refuse the launch): meanwhile the test lowers max_steps so that the rerun is short.
  restarts=0
  for _ in $(seq 600); do
    restarts=$(job_field "$JOB" Restarts)
    [ "${restarts:-0}" -lt 1 ] || break
    sleep 0.1
  done
  check "$name: job requeued (Restarts=$restarts)" is_eq "$restarts" 1
  [ "$restarts" = 1 ] || { cat "$WORK/$name.out"; scancel "$JOB"; return; }
  k=$(sed -n 's/^step-0*\([0-9][0-9]*\).*/\1/p' "$WORK/$name/checkpoints/latest" 2>/dev/null)
  check "$name: checkpoint at step $k written after the signal (steps seen: $seen)" test "${k:-0}" -ge "$seen"
  check "$name: run 1 stopped at the checkpoint step (metrics 1..$k)" same_lines "$(steps_of "$WORK/$name")" "$(seq 1 "${k:-0}")"
  if [ "${1:-}" = --batch ]; then  # the signal went to the batch script, whose trap forwarded it
    check "$name: the script got SIGUSR1 and forwarded it" has_line "$WORK/$name.out" "got SIGUSR1: asking the ranks"
  fi
  check "$name: neftune exited 75 and the script requeued the job" \
    has_line "$WORK/$name.out" "preempted (exit 75): job $JOB requeued"
  m=$((k + 30))
  write_config "$WORK/$name.yaml" "$WORK/$name" "$m"
  state=$(job_field "$JOB" JobState)
  say "$name: job $JOB $state after requeue (reason $(job_field "$JOB" Reason), eligible at" \
    "$(job_field "$JOB" EligibleTime | cut -dT -f2)); max_steps -> $m"
  wait_waiter 300  # sbatch --wait's status: the job's final exit code
  state=$(job_field "$JOB" JobState)
  check "$name: requeued run finished: exit code ${rc:-?} == 0 (state $state)" is_eq "$rc" 0
  check "$name: requeued run resumed from step $k" has_line "$WORK/$name.out" "resumed from .*step-0*$k at step $k"
  check "$name: metrics steps continue 1..$k, $((k + 1))..$m (no restart at 1)" \
    same_lines "$(steps_of "$WORK/$name")" "$(seq 1 "$m")"
  check "$name: final/ written" is_dir "$WORK/$name/final"
  [ "$failures" -eq 0 ] || cat "$WORK/$name.out"
}
preempt_case b srun
preempt_case c mpirun --batch

# ---- d) bad input: exit 2 passed through, not requeued ----
say "d) a config with an unknown key: exit 2, no requeue"
write_config "$WORK/d.yaml" "$WORK/d" 40
echo "trian: {lr: 1.0}" >>"$WORK/d.yaml"
timeout 300 sbatch --wait --parsable --chdir="$WORK" -o "$WORK/d.out" "$SBATCH" d.yaml >"$WORK/d.id"
rc=$?
JOB=$(cut -d';' -f1 "$WORK/d.id")
check "d: sbatch --wait exit code $rc == 2" is_eq "$rc" 2
check "d: not requeued (Restarts=$(job_field "$JOB" Restarts))" lacks_line "$WORK/d.out" "run 2"
check "d: the script passed the exit code through" has_line "$WORK/d.out" "neftune exited with 2"

# ---- e) a plain scancel (SIGTERM): the ranks still checkpoint, but the job ends, not requeued ----
say "e) scancel JOBID: checkpoint, exit 75, job CANCELLED and not requeued"
write_config "$WORK/e.yaml" "$WORK/e" 2000
submit_bg e "$SBATCH" e.yaml
for _ in $(seq 1200); do
  [ "$(n_steps "$WORK/e")" -lt 5 ] || break
  sleep 0.1
done
scancel "$JOB"
# sbatch --wait returns as soon as the job is CANCELLED, while the script still waits for the ranks to
# save (state COMPLETING, exit code not known yet): wait for the job to end, then read its exit code.
for _ in $(seq 900); do
  state=$(job_field "$JOB" JobState)
  [ "$state" = PENDING ] || [ "$state" = RUNNING ] || [ "$state" = COMPLETING ] || break
  sleep 0.1
done
check "e: job CANCELLED ($state), not requeued (Restarts=$(job_field "$JOB" Restarts))" \
  is_eq "$state/$(job_field "$JOB" Restarts)" CANCELLED/0
check "e: the script exited 75 (ExitCode=$(job_field "$JOB" ExitCode))" is_eq "$(job_field "$JOB" ExitCode)" 75:0
wait_waiter 60
check "e: checkpoint written" test -s "$WORK/e/checkpoints/latest"
check "e: the script did not requeue" has_line "$WORK/e.out" "not requeueing: Slurm is ending the job"

# ---- f) optional: the signal Slurm itself sends before the time limit ----
# USR1@30 with a 2-minute limit: Slurm checks about every 30 s and may signal up to 60 s early, so the
# signal comes 30 to 90 s after the start.
if [ "${NEFTUNE_SLURM_TEST_TIMELIMIT:-0}" = 1 ]; then
  say "f) --time=2 --signal=B:USR1@30: Slurm signals the script before the time limit"
  write_config "$WORK/f.yaml" "$WORK/f" 100000
  submit_bg f --time=2 --signal=B:USR1@30 "$SBATCH" f.yaml
  for _ in $(seq 1500); do
    [ "$(job_field "$JOB" Restarts)" != 1 ] || break
    sleep 0.1
  done
  check "f: requeued before the time limit (Restarts=$(job_field "$JOB" Restarts))" is_eq "$(job_field "$JOB" Restarts)" 1
  check "f: the script got SIGUSR1 from Slurm" has_line "$WORK/f.out" "got SIGUSR1"
  check "f: the ranks checkpointed" has_line "$WORK/f.out" "checkpoint written at step"
  check "f: neftune exited 75 and the job was requeued" has_line "$WORK/f.out" "preempted (exit 75): job $JOB requeued"
  scancel "$JOB"
  wait_waiter 120
fi

[ "$failures" -eq 0 ]
