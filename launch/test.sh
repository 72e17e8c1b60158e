#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (what CI runs).
#   launch/test.sh              all tests
#   launch/test.sh -L unit      only one ctest label (unit, dist, fixture, slurm, docker, torch2)
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
bash launch/build.sh
ctest --test-dir build --output-on-failure -j2 "$@"
