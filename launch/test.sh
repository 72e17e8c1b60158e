#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (what CI runs).
#   launch/test.sh              all tests
#   launch/test.sh -L unit      only one ctest label (unit, dist, fixture, slurm, docker, torch2)
# Each test's time is also written to build/ctest-junit.xml (JUnit XML; .ci/split.py reads it).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/step_times.sh
source launch/step_times.sh
timed "setup: packages" bash launch/setup.sh
timed "build" bash launch/build.sh
timed "ctest" ctest --test-dir build --output-on-failure -j2 --output-junit "$PWD/build/ctest-junit.xml" "$@"
