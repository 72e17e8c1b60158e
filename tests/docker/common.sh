# shellcheck shell=bash
# shellcheck disable=SC2154  # $root: set by the sourcing script
# Sourced by the container tests in tests/docker (not run on its own); $root is the repository root.
# skip/fail with ctest's exit codes, phase times printed at exit (for information only, nothing is
# asserted on them), and the steps every container test starts with.

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
timings=()
phase_start() { phase=$1; t0=$(date +%s.%N); echo "=== $phase"; }
phase_end() {
  local dt
  dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  timings+=("$(printf '%-40s %7s s' "$phase" "$dt")")
  echo "=== $phase: ${dt} s"
}
report() { [ ${#timings[@]} -eq 0 ] || { echo "--- phase times"; printf '  %s\n' "${timings[@]}"; }; }
trap report EXIT

# container_setup SUITE: root, the tools (installed by launch/setup.sh --container when missing), the
# debian:SUITE base image (kept between runs: its ID anchors the layer cache), and a container that
# starts. Exit 77 with the reason where this machine cannot build or run containers.
container_setup() {
  local suite=$1 rc=0 out c
  [ "$(id -u)" -eq 0 ] || skip "needs root (rootful podman/buildah and debootstrap)"

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
