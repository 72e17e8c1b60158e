#!/usr/bin/env bash
# Installs what is missing, builds, fine-tunes the embedded default on 2 MPI ranks (nothing to
# download), then shows what the model generates and how it scores on held-out tasks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
bash launch/build.sh
mpi_flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpi_flags+=(--allow-run-as-root)
mpirun "${mpi_flags[@]}" -np 2 build/bin/neftune train config/examples/quickstart.yaml "$@"
echo "--- neftune generate --model runs/quickstart/final --prompt 'How many letters are in the following word?' --input neftune"
build/bin/neftune generate --model runs/quickstart/final --prompt "How many letters are in the following word?" --input neftune
echo "--- neftune eval --model runs/quickstart/final"
build/bin/neftune eval --model runs/quickstart/final
