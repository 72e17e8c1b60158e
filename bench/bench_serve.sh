#!/usr/bin/env bash
# Time from job submission to its first optimizer step: the second job on a live `neftune serve`
# daemon vs a fresh `mpirun ... neftune train` of the same job, measured in one run.
#   bench/bench_serve.sh [ranks=2] [model dim=128]
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${1:-2}
dim=${2:-128}
bin=build/bin/neftune
work=$(mktemp -d /tmp/neftune-bench-serve.XXXXXX)
trap 'kill %1 2>/dev/null || true; rm -rf "$work"' EXIT
mpi=(mpirun --oversubscribe --bind-to none -np "$ranks")
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)

job() {  # $1 = output_dir (empty inside the daemon)
  cat <<YAML
${1:+output_dir: $1}
model: {init: {dim: $dim, n_layers: 4, n_heads: 4, n_kv_heads: 2, hidden_dim: $((dim * 11 / 4))}}
data: {builtin_train_size: 2000, builtin_eval_size: 0, max_seq_len: 256}
train: {max_steps: 5, micro_batch_size: 4, lr: 1.0e-3}
logging: {progress: off, level: warn}
YAML
}
now() { date +%s.%N; }

"${mpi[@]}" "$bin" serve --spool "$work/spool" --listen 127.0.0.1:0 --no-default-job --poll-ms 50 > "$work/serve.log" 2>&1 &
for _ in $(seq 600); do [ -f "$work/spool/daemon.json" ] && break; sleep 0.05; done
port=$(sed -E 's/.*"port":([0-9]+).*/\1/' "$work/spool/daemon.json")
submit() { curl -s -X POST --data-binary "$(job)" "http://127.0.0.1:$port/v1/jobs?name=$1" | sed -nE 's/.*"id": "([^"]+)".*/\1/p' | head -1; }
status() { curl -s "http://127.0.0.1:$port/v1/jobs/$1"; }
wait_done() { for _ in $(seq 3000); do status "$1" | grep -q '"state": "done"' && return; sleep 0.1; done; echo "timeout" >&2; exit 1; }

first=$(submit first); wait_done "$first"
second=$(submit second); wait_done "$second"
daemon_s=$(status "$second" | python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.3f" % (j["first_step_at"] - j["submitted_at"]))')

job "$work/fresh" > "$work/fresh.yaml"
t0=$(now)
"${mpi[@]}" "$bin" train "$work/fresh.yaml" > "$work/fresh.log" 2>&1 &
fresh_pid=$!
until [ -s "$work/fresh/metrics.jsonl" ]; do sleep 0.02; done
t1=$(now)
wait $fresh_pid
fresh_s=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
echo "{\"ranks\": $ranks, \"submission_to_first_step_s\": {\"daemon_second_job\": $daemon_s, \"fresh_mpirun_train\": $fresh_s}, \"ratio_fresh_over_daemon\": $(python3 -c "print(f'{$fresh_s / $daemon_s:.2f}')")}"
