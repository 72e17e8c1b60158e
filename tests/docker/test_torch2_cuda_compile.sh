#!/usr/bin/env bash
# ctest torch2_cuda_compile (label torch2): the CUDA flavour compiled, not linked. In the Debian 13 packages
# image (LibTorch 2.6, whose headers include c10/cuda and ATen/cuda), with this machine's CUDA toolkit and
# NCCL mounted read-only at /usr/local/cuda, configures with -DNEFTUNE_CUDA_COMPILE_CHECK=ON (defines
# NEFTUNE_TORCH_CUDA=1 and builds the NCCL backend) and -DNEFTUNE_WERROR=ON, and compiles every
# translation unit whose compiler input differs from the CPU flavour's (tests/docker/cuda_flavour_units.py:
# the units only the CUDA flavour has, and those that include, through the project's own files, a macro
# or a header that only the CUDA configuration has), so every #if branch only a GPU build takes goes
# through the compiler. Every other unit is the same file with the same macros in both flavours, and
# torch2_debian13 compiles it against the same LibTorch 2.6 with -Werror. Linking cannot work (Debian's
# LibTorch has no CUDA libraries) and is not tried.
#   usage: test_torch2_cuda_compile.sh REPO_ROOT BUILD_DIR [CUDA_DIR]
# BUILD_DIR is kept between runs (ninja then recompiles only what changed); CUDA_DIR defaults to
# $CUDA_HOME or /usr/local/cuda. Exit 77 (ctest: skipped) where there is no CUDA toolkit with nccl.h, and
# wherever test_docker_cpu.sh skips (see tests/docker/common.sh).
set -euo pipefail

root=$(cd "${1:?usage: test_torch2_cuda_compile.sh REPO_ROOT BUILD_DIR [CUDA_DIR]}" && pwd)
build=${2:?usage: test_torch2_cuda_compile.sh REPO_ROOT BUILD_DIR [CUDA_DIR]}
cuda=${3:-${CUDA_HOME:-/usr/local/cuda}}

# shellcheck source=tests/docker/common.sh
source "$root/tests/docker/common.sh"
[ -f "$cuda/include/cuda_runtime_api.h" ] || skip "no CUDA toolkit at $cuda (set CUDA_HOME)"
[ -f "$cuda/include/nccl.h" ] || skip "no NCCL header at $cuda/include/nccl.h (the NCCL backend cannot be compiled)"
cuda=$(readlink -f "$cuda")
container_setup trixie

work=$(mktemp -d /var/tmp/neftune-torch2-cuda.XXXXXX)
trap 'rm -rf "$work"; report' EXIT
phase_start "image: Debian 13 packages"
build_image "$work/deps.log" --suite trixie --target deps --tag "$torch2_image"
phase_end

# Fixed paths inside the container, so that the build directory stays valid from one run to the next.
mkdir -p "$build"
run_in_image() {
  bash "$root/docker/build-and-run.sh" --no-build --tag "$torch2_image" \
    -v "$root:/opt/neftune:ro" -v "$(cd "$build" && pwd):/build" -v "$cuda:/usr/local/cuda:ro" -- "$@"
}

# Two configurations with torch2_debian13's options: the CPU flavour exactly as that test builds it, only
# to compare against, and the CUDA flavour.
phase_start "configure (CPU reference and CUDA flavour)"
run_in_image bash -c '
  cmake -S /opt/neftune -B /build/cpu-reference "$@" >/build/cpu-reference.log 2>&1 ||
    { tail -n 40 /build/cpu-reference.log; exit 1; }
  cmake -S /opt/neftune -B /build/cuda "$@" -DCUDAToolkit_ROOT=/usr/local/cuda \
    -DNEFTUNE_CUDA_COMPILE_CHECK=ON -DNEFTUNE_WITH_NCCL=ON >/build/cuda-configure.log 2>&1 ||
    { tail -n 40 /build/cuda-configure.log; exit 1; }
  grep -E "neftune: " /build/cuda-configure.log' cmake "${torch2_cmake_args[@]}" ||
  fail "configure with -DNEFTUNE_CUDA_COMPILE_CHECK=ON failed"
phase_end

phase_start "compile the units that differ"
# shellcheck disable=SC2016  # expanded inside the container
run_in_image bash -c '
  set -euo pipefail
  cd /build/cuda
  # The NCCL backend and the GPU test exist only in the CUDA flavour; the switches must reach what tests them.
  python3 /opt/neftune/tests/docker/cuda_flavour_units.py /opt/neftune /build/cpu-reference/compile_commands.json \
    compile_commands.json --must distributed/nccl_communicator.cpp --must tests/test_nccl_gpu.cpp \
    --must trainer/run/device.cpp >objects.txt
  mapfile -t objects <objects.txt
  printf "  %s\n" "${objects[@]}"
  ninja -k 0 "${objects[@]}" | grep --line-buffered -v "^\[" || true
  ninja -n "${objects[@]}" | grep -q "no work to do" || { echo "some translation units did not compile" >&2; exit 1; }
  grep -q "NEFTUNE_TORCH_CUDA=1" compile_commands.json || { echo "NEFTUNE_TORCH_CUDA=1 is in no compile command" >&2; exit 1; }
  echo "${#objects[@]} translation units compiled for the CUDA flavour (NEFTUNE_TORCH_CUDA=1, NEFTUNE_WITH_NCCL=1)"
' || fail "the CUDA flavour does not compile against LibTorch 2.6 + CUDA $(basename "$cuda") (errors above)"
phase_end
echo "PASS: every translation unit of the CUDA flavour that differs from the CPU one compiles (LibTorch 2.6 headers, $cuda, -Werror)"
