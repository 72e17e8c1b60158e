#!/usr/bin/env bash
# ctest torch2_debian13 (label torch2): neftune on LibTorch 2.x. Builds docker/Dockerfile.cpu on a
# Debian 13 (trixie) base, whose libtorch-dev is 2.6 (CPU), with the tests and -DNEFTUNE_WERROR=ON (so
# the same source must build warning-free with Debian 13's GCC, spdlog, fmt, GoogleTest, ...), then runs
# the ctest labels unit, fixture and dist inside the image, the fixtures mounted read-only.
#   usage: test_torch2.sh REPO_ROOT SHARED_DIR
# SHARED_DIR is the fixture directory (NEFTUNE_SHARED_DIR); it appears in the image at
# /opt/shared = <source tree>/../shared, where the tests look. Without it the fixture tests skip.
# Exit 77 (ctest: skipped) exactly where test_docker_cpu.sh skips (see tests/docker/common.sh).
set -euo pipefail

root=$(cd "${1:?usage: test_torch2.sh REPO_ROOT SHARED_DIR}" && pwd)
shared=${2:-}
image=localhost/neftune:torch2
labels=(unit fixture dist)

# shellcheck source=tests/docker/common.sh
source "$root/tests/docker/common.sh"
container_setup trixie

work=$(mktemp -d /var/tmp/neftune-torch2.XXXXXX)
trap 'rm -rf "$work"; report' EXIT

# The packages alone first, so their time shows apart from the build's (the full build reuses the layer).
phase_start "image: Debian 13 packages"
build_image "$work/deps.log" --suite trixie --target deps --tag localhost/neftune:trixie-deps
phase_end

phase_start "image: build with tests (-Werror)"
build_image "$work/build.log" --suite trixie --tag "$image" --build-arg KEEP_BUILD=1 \
  --build-arg "CMAKE_ARGS=-DNEFTUNE_BUILD_TESTS=ON -DNEFTUNE_BUILD_BENCH=OFF -DNEFTUNE_WERROR=ON"
grep -E 'neftune: LibTorch' "$work/build.log" || true  # the configure summary (absent when cached)
podman image inspect --format '{{.Id}} {{.Size}}' "$image" | awk '{ printf "image %.12s, %d MB\n", $1, $2 / 1e6 }'
phase_end

mounts=()
if [ -n "$shared" ] && [ -d "$shared/fixtures" ]; then
  mounts=(-v "$(cd "$shared" && pwd):/opt/shared:ro")
else
  echo "NOTE: no fixtures at '$shared': the fixture tests skip (LibTorch 2.x numerics unchecked)"
fi
run_in_image() { bash "$root/docker/build-and-run.sh" --no-build --tag "$image" ${mounts[@]+"${mounts[@]}"} -- "$@"; }

# The image's LibTorch must be 2.x, else this test tests nothing new.
version=$(run_in_image bash -c "sed -n 's/^#define TORCH_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' \
  /usr/include/torch/csrc/api/include/torch/version.h | paste -sd.")
echo "LibTorch in the image: $version"
[ "${version%%.*}" -ge 2 ] 2>/dev/null || fail "the image's LibTorch is '$version', not 2.x"

failed=()
for label in "${labels[@]}"; do
  phase_start "ctest -L $label"
  run_in_image ctest --test-dir build -L "$label" -j2 --output-on-failure || failed+=("$label")
  phase_end
done
[ ${#failed[@]} -eq 0 ] || fail "LibTorch $version: ctest labels failed inside the image: ${failed[*]}"
echo "PASS: neftune built warning-free against LibTorch $version on Debian 13; ctest ${labels[*]} pass inside the image"
