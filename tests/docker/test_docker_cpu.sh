#!/usr/bin/env bash
# ctest docker_cpu_quickstart (label docker): builds docker/Dockerfile.cpu with rootful podman on this
# machine (no Docker engine, no registry: the debian:bookworm base is made with debootstrap from the
# host's apt mirror), fine-tunes the quick start on 2 MPI ranks inside the image (20 steps), checks its
# outputs on the host, and generates from the result inside the image.
#   usage: test_docker_cpu.sh REPO_ROOT
# Exit 77 (ctest: skipped) with the reason when this machine cannot build or run containers: not root,
# podman/buildah/runc/debootstrap missing and not installable, the Debian mirror unreachable, or the
# container runtime refusing to start a container. Any other failure fails the test.
# Phase times are printed for information only; nothing is asserted on them.
set -euo pipefail

root=$(cd "${1:?usage: test_docker_cpu.sh REPO_ROOT}" && pwd)
image=localhost/neftune:cpu
steps=20

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
timings=()
phase_start() { phase=$1; t0=$(date +%s.%N); echo "=== $phase"; }
phase_end() {
  local dt
  dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  timings+=("$(printf '%-32s %7s s' "$phase" "$dt")")
  echo "=== $phase: ${dt} s"
}
report() { [ ${#timings[@]} -eq 0 ] || { echo "--- phase times"; printf '  %s\n' "${timings[@]}"; }; }
trap report EXIT

[ "$(id -u)" -eq 0 ] || skip "needs root (rootful podman/buildah and debootstrap)"

# 1. Tools: installed by launch/setup.sh --container when missing.
phase_start "tools"
have_tools() { local c; for c in podman buildah runc debootstrap; do command -v "$c" >/dev/null || return 1; done; }
if ! have_tools; then
  bash "$root/launch/setup.sh" --container || skip "cannot install podman/buildah/runc/debootstrap (launch/setup.sh --container failed)"
  have_tools || skip "podman/buildah/runc/debootstrap still missing after launch/setup.sh --container"
fi
echo "$(podman --version), $(buildah --version | cut -d' ' -f1-3), $(runc --version | head -n1)"
phase_end

# 2. Base image (kept between runs: its ID anchors the layer cache).
phase_start "base image"
rc=0
bash "$root/docker/make-base-image.sh" || rc=$?
[ "$rc" -eq 3 ] && skip "cannot make the debian:bookworm base image here (see the message above)"
[ "$rc" -eq 0 ] || fail "docker/make-base-image.sh exited $rc"
phase_end

# 3. Can this machine start a container at all (the base image, run the way build-and-run.sh runs one)?
phase_start "container smoke test"
if ! out=$(bash "$root/docker/build-and-run.sh" --no-build --tag debian:bookworm -- true 2>&1); then
  skip "podman cannot run containers here: $out"
fi
phase_end

work=$(mktemp -d /var/tmp/neftune-docker-test.XXXXXX)
trap 'rm -rf "$work"; report' EXIT

# 4. The image (podman build; layer-cached, so a second run with unchanged sources takes seconds). The
#    full log goes to a file; the steps and their cache hits are shown, the log's tail on failure.
phase_start "image build"
if ! bash "$root/docker/build-and-run.sh" --tag "$image" >"$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log"
  fail "building docker/Dockerfile.cpu failed"
fi
grep -E '^STEP |^--> Using cache|^\[build-and-run\]' "$work/build.log" | cut -c1-120
podman image inspect --format '{{.Id}} {{.Size}}' "$image" | awk '{ printf "image %.12s, %d MB\n", $1, $2 / 1e6 }'
phase_end

run_in_image() { bash "$root/docker/build-and-run.sh" --no-build --tag "$image" -v "$work:/out" -- "$@"; }

# 5. The quick start on 2 ranks inside the image, short version, outputs on a host directory.
phase_start "quickstart (2 ranks, $steps steps)"
run_in_image mpirun --allow-run-as-root --oversubscribe -np 2 \
  neftune train config/examples/quickstart.yaml \
  --set train.max_steps=$steps --set train.eval_every_steps=0 --set output_dir=/out/qs ||
  fail "mpirun -np 2 neftune train failed inside the image"
phase_end

[ -s "$work/qs/final/model.safetensors" ] || fail "no final/model.safetensors in the output dir"
[ -s "$work/qs/final/config.json" ] || fail "no final/config.json in the output dir"
[ -s "$work/qs/metrics.jsonl" ] || fail "no metrics.jsonl in the output dir"
# Every training line is one step: exactly steps 1..N, each with a finite loss.
python3 - "$work/qs/metrics.jsonl" "$steps" <<'EOF' || fail "metrics.jsonl does not hold $steps step lines"
import json, math, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
train = [l for l in lines if "loss" in l]
steps = [l["step"] for l in train]
want = list(range(1, int(sys.argv[2]) + 1))
assert steps == want, f"steps {steps} != {want}"
assert all(math.isfinite(l["loss"]) for l in train), "non-finite loss"
print(f"metrics.jsonl: {len(train)} step lines, loss {train[0]['loss']:.3f} -> {train[-1]['loss']:.3f}")
EOF

# 6. Generate from the result inside the image (greedy, JSON output).
phase_start "generate"
gen=$(run_in_image neftune generate --model /out/qs/final --prompt "How many letters are in the following word?" \
        --input neftune --max-new-tokens 16 --temperature 0 --json) || fail "neftune generate failed inside the image"
phase_end
python3 - "$gen" <<'EOF' || fail "neftune generate --json printed no generated tokens: $gen"
import json, sys
d = json.loads(sys.argv[1].strip().splitlines()[-1])
assert d["output_ids"] and isinstance(d["text"], str)
print(f"generate: {len(d['prompt_ids'])} prompt tokens -> output ids {d['output_ids']}, text {d['text']!r}")
EOF

echo "PASS: image $image built, quick start trained on 2 ranks inside it, generate works"
