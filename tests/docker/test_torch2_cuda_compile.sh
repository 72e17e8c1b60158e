#!/usr/bin/env bash
# ctest torch2_cuda_compile (label torch2): the CUDA flavour compiled, not linked. In the Debian 13 packages
# image (LibTorch 2.6, whose headers include c10/cuda and ATen/cuda), with this machine's CUDA toolkit and
# NCCL mounted read-only at /usr/local/cuda, configures with -DNEFTUNE_CUDA_COMPILE_CHECK=ON (defines
# NEFTUNE_TORCH_CUDA=1 and builds the NCCL backend) and -DNEFTUNE_WERROR=ON, then builds every object
# file: the libraries, the tests and the benchmarks, so every #if branch only a GPU build takes goes
# through the compiler. Linking cannot work (Debian's LibTorch has no CUDA libraries) and is not tried.
#   usage: test_torch2_cuda_compile.sh REPO_ROOT BUILD_DIR [CUDA_DIR]
# BUILD_DIR is kept between runs (ninja then recompiles only what changed); CUDA_DIR defaults to
# $CUDA_HOME or /usr/local/cuda. Exit 77 (ctest: skipped) where there is no CUDA toolkit with nccl.h, and
# wherever test_docker_cpu.sh skips (see tests/docker/common.sh).
set -euo pipefail

root=$(cd "${1:?usage: test_torch2_cuda_compile.sh REPO_ROOT BUILD_DIR [CUDA_DIR]}" && pwd)
build=${2:?usage: test_torch2_cuda_compile.sh REPO_ROOT BUILD_DIR [CUDA_DIR]}
cuda=${3:-${CUDA_HOME:-/usr/local/cuda}}
image=localhost/neftune:trixie-deps

# shellcheck source=tests/docker/common.sh
source "$root/tests/docker/common.sh"
[ -f "$cuda/include/cuda_runtime_api.h" ] || skip "no CUDA toolkit at $cuda (set CUDA_HOME)"
[ -f "$cuda/include/nccl.h" ] || skip "no NCCL header at $cuda/include/nccl.h (the NCCL backend cannot be compiled)"
cuda=$(readlink -f "$cuda")
container_setup trixie

work=$(mktemp -d /var/tmp/neftune-torch2-cuda.XXXXXX)
trap 'rm -rf "$work"; report' EXIT
phase_start "image: Debian 13 packages"
build_image "$work/deps.log" --suite trixie --target deps --tag "$image"
phase_end

# Fixed paths inside the container, so that the build directory stays valid from one run to the next.
mkdir -p "$build"
run_in_image() {
  bash "$root/docker/build-and-run.sh" --no-build --tag "$image" \
    -v "$root:/src:ro" -v "$(cd "$build" && pwd):/build" -v "$cuda:/usr/local/cuda:ro" -- "$@"
}

phase_start "configure (CUDA compile check)"
run_in_image cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCUDAToolkit_ROOT=/usr/local/cuda \
  -DNEFTUNE_CUDA_COMPILE_CHECK=ON -DNEFTUNE_WITH_NCCL=ON -DNEFTUNE_WERROR=ON \
  -DNEFTUNE_BUILD_TESTS=ON -DNEFTUNE_BUILD_BENCH=ON >"$work/configure.log" 2>&1 || {
  tail -n 40 "$work/configure.log"
  fail "configure with -DNEFTUNE_CUDA_COMPILE_CHECK=ON failed"
}
grep -E 'neftune: ' "$work/configure.log"
phase_end

# Every object file of the build: one per translation unit (the precompiled headers come with them).
phase_start "compile every translation unit"
# shellcheck disable=SC2016  # expanded inside the container
run_in_image bash -c '
  set -euo pipefail
  cd /build
  mapfile -t objects < <(ninja -t targets all | sed -n "s/^\([^:]*\.o\): .*/\1/p" | sort -u)
  [ ${#objects[@]} -gt 0 ] || { echo "no object files in the build" >&2; exit 1; }
  ninja -k 0 "${objects[@]}" | grep --line-buffered -v "^\[" || true
  ninja -n "${objects[@]}" | grep -q "no work to do" || { echo "some translation units did not compile" >&2; exit 1; }
  printf "%s\n" "${objects[@]}" >objects.txt
  # Both CUDA switches must reach the translation units that test them.
  grep -q "NEFTUNE_TORCH_CUDA=1" compile_commands.json || { echo "NEFTUNE_TORCH_CUDA=1 is in no compile command" >&2; exit 1; }
  grep -q "nccl_communicator.cpp.o" objects.txt || { echo "distributed/nccl_communicator.cpp was not compiled" >&2; exit 1; }
  # One compile command a line in compile_commands.json; those writing a .gch make precompiled headers.
  count() { grep "\"command\"" compile_commands.json | grep -v "\.gch " | grep -c "$1"; }
  echo "$(wc -l <objects.txt) translation units compiled for the CUDA flavour" \
       "($(count NEFTUNE_TORCH_CUDA=1) with NEFTUNE_TORCH_CUDA=1, $(count NEFTUNE_WITH_NCCL=1) with NEFTUNE_WITH_NCCL=1)"
' || fail "the CUDA flavour does not compile against LibTorch 2.6 + CUDA $(basename "$cuda") (errors above)"
phase_end
echo "PASS: every translation unit of the CUDA flavour compiles (LibTorch 2.6 headers, $cuda, -Werror)"
