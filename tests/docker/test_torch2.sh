#!/usr/bin/env bash
# ctest torch2_debian13 (label torch2): neftune on LibTorch 2.x. In the Debian 13 (trixie) packages image
# (docker/Dockerfile.cpu, stage deps: launch/setup.sh's packages, LibTorch 2.6 CPU), builds the project
# with the tests, the benchmarks and -DNEFTUNE_WERROR=ON (so the same source must build warning-free with
# Debian 13's GCC, spdlog, fmt, GoogleTest, ...), then runs the ctest labels unit, fixture and dist
# against that build. The source is mounted read-only, the fixtures read-only at <source>/../shared, and
# the build directory is the host's BUILD_DIR, kept between runs (a second run rebuilds only what changed).
#   usage: test_torch2.sh REPO_ROOT SHARED_DIR BUILD_DIR
# SHARED_DIR is the fixture directory (NEFTUNE_SHARED_DIR); without it the fixture tests skip.
# Exit 77 (ctest: skipped) exactly where test_docker_cpu.sh skips (see tests/docker/common.sh).
set -euo pipefail

root=$(cd "${1:?usage: test_torch2.sh REPO_ROOT SHARED_DIR BUILD_DIR}" && pwd)
shared=${2:-}
build=${3:?usage: test_torch2.sh REPO_ROOT SHARED_DIR BUILD_DIR}
labels=(unit fixture dist)

# shellcheck source=tests/docker/common.sh
source "$root/tests/docker/common.sh"
container_setup trixie

work=$(mktemp -d /var/tmp/neftune-torch2.XXXXXX)
trap 'rm -rf "$work"; report' EXIT

phase_start "image: Debian 13 packages"
build_image "$work/deps.log" --suite trixie --target deps --tag "$torch2_image"
phase_end

mkdir -p "$build"
mounts=(-v "$root:/opt/neftune:ro" -v "$(cd "$build" && pwd):/build")
envs=()
if [ -n "$shared" ] && [ -d "$shared/fixtures" ]; then
  mounts+=(-v "$(cd "$shared" && pwd):/opt/shared:ro")
  # As on the host (.ci/run): where the fixtures are, a missing reference fails instead of skipping.
  envs=(-e "NEFTUNE_REQUIRE_REFERENCES=${NEFTUNE_REQUIRE_REFERENCES:-0}")
else
  echo "NOTE: no fixtures at '$shared': the fixture tests skip (LibTorch 2.x numerics unchecked)"
fi
run_in_image() {
  bash "$root/docker/build-and-run.sh" --no-build --tag "$torch2_image" "${mounts[@]}" ${envs[@]+"${envs[@]}"} -- "$@"
}

# The image's LibTorch must be 2.x, else this test tests nothing new.
version=$(run_in_image bash -c "sed -n 's/^#define TORCH_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' \
  /usr/include/torch/csrc/api/include/torch/version.h | paste -sd.")
echo "LibTorch in the image: $version"
[ "${version%%.*}" -ge 2 ] 2>/dev/null || fail "the image's LibTorch is '$version', not 2.x"

phase_start "build with tests and benchmarks (-Werror)"
run_in_image bash -c 'set -o pipefail
                      cmake -S /opt/neftune -B /build/cpu "$@" >/build/cpu-configure.log 2>&1 ||
                        { tail -n 40 /build/cpu-configure.log; exit 1; }
                      grep -E "neftune: LibTorch" /build/cpu-configure.log
                      cmake --build /build/cpu -j"$(nproc)" 2>&1 | { grep --line-buffered -v "^\[" || true; }' \
  cmake "${torch2_cmake_args[@]}" || fail "LibTorch $version: the build with -Werror failed (errors above)"
phase_end

# One ctest over the three labels, so that their tests share both cores (its label time summary says
# how long each label took).
phase_start "ctest -L ${labels[*]}"
run_in_image ctest --test-dir /build/cpu -L "^($(IFS='|'; echo "${labels[*]}"))\$" -j"$(nproc)" --output-on-failure ||
  fail "LibTorch $version: ctest labels ${labels[*]} failed inside the image (above)"
phase_end
echo "PASS: neftune built warning-free against LibTorch $version on Debian 13; ctest ${labels[*]} pass inside the image"
