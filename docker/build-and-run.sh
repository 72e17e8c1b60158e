#!/usr/bin/env bash
# Builds docker/Dockerfile.cpu with podman (or buildah) and runs a command in the image, with the flags
# that work on a Debian 12 host with rootful podman/buildah, no Docker engine and no registry.
#
# Usage: docker/build-and-run.sh [options] [--] [COMMAND [ARGS...]]
#   COMMAND runs inside the image in place of its entrypoint; without one the image is only built.
#     docker/build-and-run.sh neftune train --help
#     docker/build-and-run.sh -v "$PWD/runs:/opt/neftune/runs" -- \
#         mpirun -np 2 neftune train config/examples/quickstart.yaml
#   -v SRC:DST[:OPTS]  bind-mount a host path (repeatable); -e VAR=VALUE  set a variable (repeatable)
#   --tag NAME         image name (default localhost/neftune:cpu)
#   --suite SUITE      Debian release of the base image (default bookworm; trixie = Debian 13, LibTorch 2.6)
#   --build-arg K=V    a build argument of Dockerfile.cpu (repeatable), e.g. CMAKE_ARGS="..." or KEEP_BUILD=1
#   --target STAGE     build only up to this stage (deps = the packages alone)
#   --no-build         run the existing image without building
#   --base             make the local debian:SUITE base first when missing (docker/make-base-image.sh)
# Environment: NEFTUNE_CONTAINER_TOOL=podman (default) | buildah.
#
# Why these flags (Debian 12 podman 4.3 / buildah 1.28, hybrid cgroups, root without CAP_SYS_RESOURCE):
#   build: --isolation chroot (the default OCI isolation uses crun, which refuses hybrid cgroups);
#          --format docker (OCI drops SHELL/HEALTHCHECK silently); --layers (buildah caches only with it).
#   run:   --runtime runc (crun: "cgroups in hybrid mode not supported"); --ulimit nofile/nproc at or below
#          podman's own limits (the defaults make the runtime fail on setrlimit); --shm-size for MPI's
#          shared-memory transport.
# Dangling images left by rebuilds of this image (and only this image: label org.neftune.image) are pruned.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tool=${NEFTUNE_CONTAINER_TOOL:-podman}
tag=localhost/neftune:cpu
suite=bookworm
build=1
base=0
mounts=()
envs=()
build_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -v) mounts+=(-v "$2"); shift 2 ;;
    -e) envs+=(-e "$2"); shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --suite) suite=$2; shift 2 ;;
    --build-arg) build_args+=(--build-arg "$2"); shift 2 ;;
    --target) build_args+=(--target "$2"); shift 2 ;;
    --no-build) build=0; shift ;;
    --base) base=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "build-and-run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
case "$tool" in
  podman|buildah) command -v "$tool" >/dev/null || {
    echo "build-and-run.sh: $tool is not installed (bash launch/setup.sh --container)" >&2; exit 3; } ;;
  *) echo "build-and-run.sh: NEFTUNE_CONTAINER_TOOL must be podman or buildah, not '$tool'" >&2; exit 2 ;;
esac

if [ "$base" -eq 1 ]; then
  NEFTUNE_CONTAINER_TOOL=$tool bash "$root/docker/make-base-image.sh" --suite "$suite"
fi

if [ "$build" -eq 1 ]; then
  t0=$SECONDS
  build_flags=(--format docker --isolation chroot --layers -f "$root/docker/Dockerfile.cpu" -t "$tag"
               --build-arg "SUITE=$suite" ${build_args[@]+"${build_args[@]}"})
  if [ "$tool" = buildah ]; then
    buildah bud "${build_flags[@]}" "$root"
  else
    podman build "${build_flags[@]}" "$root"
  fi
  "$tool" image prune -f --filter label=org.neftune.image=cpu >/dev/null 2>&1 || true
  echo "[build-and-run] built $tag in $((SECONDS - t0)) s"
fi

[ $# -gt 0 ] || exit 0

if [ "$tool" = buildah ]; then
  # buildah run needs a working container and an explicit command; its chroot isolation shares the
  # host's network and IPC (/dev/shm) namespaces.
  ctr=$(buildah from --pull-never "$tag")
  trap 'buildah rm "$ctr" >/dev/null' EXIT
  vars=()
  for e in ${envs[@]+"${envs[@]}"}; do [ "$e" = -e ] || vars+=(--env "$e"); done
  buildah run --isolation chroot ${vars[@]+"${vars[@]}"} ${mounts[@]+"${mounts[@]}"} "$ctr" -- "$@"
else
  podman run --rm --pull never --runtime runc \
    --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --shm-size=1g \
    ${envs[@]+"${envs[@]}"} ${mounts[@]+"${mounts[@]}"} --entrypoint "$1" "$tag" "${@:2}"
fi
