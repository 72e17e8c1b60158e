# shellcheck shell=bash
# shellcheck disable=SC2154  # $root: set by the sourcing script
# Sourced by the container tests in tests/docker (not run on its own); $root is the repository root.
# skip/fail with ctest's exit codes, phase times printed at exit (for information only, nothing is
# asserted on them), and the steps every container test starts with.

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
timings=()
phase_log=()
phase_start() { phase=$1; t0=$(date +%s.%N); echo "=== $phase"; }
phase_end() {
  local dt
  dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  timings+=("$(printf '%-40s %7s s' "$phase" "$dt")")
  phase_log+=("$(basename "$0" .sh)	$phase	$dt")
  echo "=== $phase: ${dt} s"
}
# The phase times are also appended to $NEFTUNE_CI_TIMES when it names a file (.ci/run prints them in its
# split): one line "TEST<tab>PHASE<tab>SECONDS" per phase.
report() {
  [ ${#timings[@]} -eq 0 ] || { echo "--- phase times"; printf '  %s\n' "${timings[@]}"; }
  if [ -n "${NEFTUNE_CI_TIMES:-}" ] && [ ${#phase_log[@]} -gt 0 ]; then
    printf '%s\n' "${phase_log[@]}" >>"$NEFTUNE_CI_TIMES" || true
  fi
}
trap report EXIT

# container_setup SUITE: root, the tools (installed by launch/setup.sh --container when missing), the
# debian:SUITE base image (kept between runs: its ID anchors the layer cache), and a container that
# starts. Exit 77 with the reason where this machine cannot build or run containers.
container_setup() {
  local suite=$1 rc=0 out c
  [ "$(id -u)" -eq 0 ] || skip "needs root (rootful podman/buildah and debootstrap)"
  images_lock

  phase_start "tools"
  have_tools() { for c in podman buildah runc debootstrap; do command -v "$c" >/dev/null || return 1; done; }
  if ! have_tools; then
    bash "$root/launch/setup.sh" --container || skip "cannot install podman/buildah/runc/debootstrap (launch/setup.sh --container failed)"
    have_tools || skip "podman/buildah/runc/debootstrap still missing after launch/setup.sh --container"
  fi
  echo "$(podman --version), $(buildah --version | cut -d' ' -f1-3), $(runc --version | head -n1)"
  phase_end

  phase_start "base image debian:$suite"
  bash "$root/docker/make-base-image.sh" --suite "$suite" || rc=$?
  [ "$rc" -eq 3 ] && skip "cannot make the debian:$suite base image here (see the message above)"
  [ "$rc" -eq 0 ] || fail "docker/make-base-image.sh --suite $suite exited $rc"
  phase_end

  # Can this machine start a container at all (the base image, run the way build-and-run.sh runs one)?
  phase_start "container smoke test"
  if ! out=$(bash "$root/docker/build-and-run.sh" --no-build --tag "debian:$suite" -- true 2>&1); then
    skip "podman cannot run containers here: $out"
  fi
  phase_end
}

# images_lock: waits until no other script of this folder is making or using images (prepare_images.sh in
# the background of .ci/run, another container test), then holds the lock until this script exits. Two
# builds of one image at once would both miss the layer cache and both do the whole work.
images_lock() {
  local lock=/var/tmp/neftune-container-images.lock t
  [ -z "${images_lock_fd:-}" ] || return 0  # held already
  exec {images_lock_fd}>"$lock"
  if ! flock -n "$images_lock_fd"; then
    echo "waiting for $lock (another run is making the container images)"
    t=$(date +%s)
    flock "$images_lock_fd"
    echo "waited $(($(date +%s) - t)) s for $lock"
  fi
}

# build_image LOG [build-and-run.sh options]: builds docker/Dockerfile.cpu (layer-cached, so a second run
# with unchanged sources takes seconds). The full log goes to LOG; the steps and their cache hits are
# shown, the log's tail on failure.
build_image() {
  local log=$1
  shift
  if ! bash "$root/docker/build-and-run.sh" "$@" >"$log" 2>&1; then
    tail -n 60 "$log"
    fail "building docker/Dockerfile.cpu ($*) failed"
  fi
  grep -E '^STEP |^--> Using cache|^\[build-and-run\]' "$log" | cut -c1-120
}

# The Debian 13 packages image (Dockerfile.cpu, stage deps) and the configure options of the LibTorch 2.6
# build: test_torch2.sh builds with them, test_torch2_cuda_compile.sh compares the CUDA flavour with them.
# shellcheck disable=SC2034  # used by the sourcing scripts
torch2_image=localhost/neftune:trixie-deps
# shellcheck disable=SC2034
torch2_cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DNEFTUNE_BUILD_TESTS=ON -DNEFTUNE_BUILD_BENCH=ON
                   -DNEFTUNE_WERROR=ON -DNEFTUNE_PCH=ON -DNEFTUNE_PCH_STRICT=ON -DNEFTUNE_UNITY_BUILD=ON
                   -DNEFTUNE_WITH_NCCL=OFF -DNEFTUNE_TEST_TORCH2=OFF)
