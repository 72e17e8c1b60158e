#!/usr/bin/env bash
# Installs the Debian packages neftune needs to build and test, when they are missing. The names are the
# same on Debian 12 (bookworm: LibTorch 1.13, Open MPI 4.1) and Debian 13 (trixie: LibTorch 2.6,
# Open MPI 5.0); tests/docker/test_torch2.sh installs them in a Debian 13 image.
# Usage: launch/setup.sh [--slurm] [--container] [--lint]
#   --slurm      also install slurm-wlm + munge (for the Slurm tests)
#   --container  also install podman/buildah/debootstrap (for the Docker image test)
#   --lint       also install clang-format and clang-tidy 22 (launch/lint.sh)
# Runs apt-get only when a package is absent, so a second run costs well under a second.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev libopenblas0-openmp
  libopenmpi-dev openmpi-bin libpmix-dev
  libspdlog-dev libfmt-dev libyaml-cpp-dev libgtest-dev libgmock-dev
  libsentencepiece-dev libpcre2-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev
  libbenchmark-dev
  python3 curl procps
)
for arg in "$@"; do
  case "$arg" in
    --slurm) pkgs+=(slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge) ;;
    --container) pkgs+=(podman buildah runc debootstrap) ;;
    --lint) pkgs+=(clang-format clang-tidy-22) ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (known: --slurm --container --lint)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "[setup] all ${#pkgs[@]} packages present"
fi

# OpenBLAS (OpenMP flavour) must be the BLAS LibTorch links against: the reference BLAS is ~30x slower.
blas=$(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null || true)
case "$blas" in
  *openblas*) ;;
  *) echo "[setup] warning: libblas.so.3 resolves to '${blas:-?}', not OpenBLAS; run:" >&2
     echo "  update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3" >&2 ;;
esac
