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

# shellcheck source=tests/docker/common.sh
source "$root/tests/docker/common.sh"

# 1-3. Tools, the debian:bookworm base image, a container that starts.
container_setup bookworm

work=$(mktemp -d /var/tmp/neftune-docker-test.XXXXXX)
trap 'rm -rf "$work"; report' EXIT

# 4. The image (podman build, layer-cached).
phase_start "image build"
build_image "$work/build.log" --tag "$image"
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
