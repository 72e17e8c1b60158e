#!/usr/bin/env bash
# Makes the container images the docker and torch2 tests start from, ahead of them: the debian:bookworm
# and debian:trixie bases (docker/make-base-image.sh, debootstrap) and the package stage (deps) of
# docker/Dockerfile.cpu on each. .ci/run starts it in the background while lint and the build keep the
# cores busy, since most of this work waits on the network and the disk; the tests then find every layer
# cached (they wait for this script through the lock in tests/docker/common.sh).
#   usage: prepare_images.sh REPO_ROOT
# Exit 0 also where containers cannot be made here (the tests skip there and say why); 1 on a failure.
set -euo pipefail

root=$(cd "${1:?usage: prepare_images.sh REPO_ROOT}" && pwd)
# shellcheck source=tests/docker/common.sh
source "$root/tests/docker/common.sh"
skip() { echo "prepare_images.sh: nothing made: $*"; exit 0; }

work=$(mktemp -d /var/tmp/neftune-images.XXXXXX)
trap 'rm -rf "$work"; report' EXIT
container_setup bookworm
phase_start "image: Debian 12 packages"
build_image "$work/bookworm.log" --target deps --tag localhost/neftune:bookworm-deps
phase_end
container_setup trixie
phase_start "image: Debian 13 packages"
build_image "$work/trixie.log" --suite trixie --target deps --tag "$torch2_image"
phase_end
