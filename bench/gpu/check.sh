#!/usr/bin/env bash
# The GPU check: does neftune's CUDA build work on this machine? For a machine with one NVIDIA GPU, the
# CUDA toolkit (nvcc), Python 3 with a CUDA PyTorch (its LibTorch is what neftune builds against) and
# the pip package nvidia-nccl-cu13 (or -cu12), CMake and Ninja, and no network: everything else comes
# from the bundle made by bench/gpu/make-bundle.sh on a Debian 12 machine.
#
#   bench/gpu/check.sh [--bundle DIR|DIR.tar.gz] [--fixtures DIR] [--out FILE] [--build-dir DIR] [--cpu]
#     --bundle    the bundle (default gpu-bundle/ or gpu-bundle.tar.gz at the repository root, or
#                 $NEFTUNE_GPU_BUNDLE); a tarball is unpacked beside itself
#     --fixtures  a folder with stories260K/ and instructions/ (default: the bundle's fixtures/, or
#                 $NEFTUNE_FIXTURES)
#     --out       the JSON summary (default $OUT/gpu-check.json when $OUT is set, else
#                 <build-dir>/gpu-check.json, or $NEFTUNE_GPU_CHECK_OUT)
#     --build-dir default build-gpu/
#     --cpu       a dry run without a GPU: the same steps against the LibTorch CMake finds (Python's if
#                 it has one), training and benchmarks on the CPU, small models, no time budget
#
# Steps, each with its own time limit (seconds; the whole stays under 9 minutes on 16 cores):
#   env (15)        versions; the bundle's libraries against this system (ldd): what it lacks is printed
#   mpi (15)        MPI_Init as a singleton (no mpirun) with the bundle's Open MPI
#   build (245)     CMake + Ninja, Release, NCCL backend on: neftune, bench_gpu, test_nccl_gpu
#   nccl (40)       tests/test_nccl_gpu: all-gather, reduce-scatter, all-reduce, broadcast in fp32 and bf16
#                   against closed forms, and a dropped input buffer not reused while its collective runs
#   parity (50)     stories260K, 30 steps, fp32, NEFTune off, TF32 off: GPU (nccl) vs CPU (mpi) loss and
#                   grad_norm per step (tolerances and why: bench/gpu/check_report.py)
#   resume (55)     stories260K, NEFTune on, 10 steps on the GPU vs 5 + stop + resume: losses per step
#                   and final weights bit for bit
#   packed (20)     the resume step's uninterrupted run again with data.packing (SDPA per sample, noise
#                   per sample inside a row): loss and grad_norm per step within the parity tolerances
#   throughput (60) bench_gpu: 1.03e9-parameter LLaMA (d 2048, 20 layers, 16 heads, ffn 5632), bf16,
#                   4 x 2048 tokens per step: tokens/s and MFU against 989 TFLOP/s
#   memory (40)     bench_gpu: the same model, 2 x 4096 tokens: peak allocated/reserved GPU memory of a step
# The last line of output is one JSON object (each step's status and figures, versions), also written
# to --out. Exit status 0 when every step passed, 1 otherwise, 2 on a usage error.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
bundle=${NEFTUNE_GPU_BUNDLE:-}
fixtures=${NEFTUNE_FIXTURES:-}
out_file=${NEFTUNE_GPU_CHECK_OUT:-}
build=$repo/build-gpu
cpu=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle=${2:?--bundle needs a path}; shift 2 ;;
    --fixtures) fixtures=${2:?--fixtures needs a folder}; shift 2 ;;
    --out) out_file=${2:?--out needs a file}; shift 2 ;;
    --build-dir) build=${2:?--build-dir needs a folder}; shift 2 ;;
    --cpu) cpu=1; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$build"
build=$(cd "$build" && pwd)
[ -n "$out_file" ] || out_file=${OUT:+$OUT/gpu-check.json}
[ -n "$out_file" ] || out_file=$build/gpu-check.json
work=$build/gpu-check
rm -rf "$work"
mkdir -p "$work/results"
t_start=$SECONDS
budget=540
[ "$cpu" -eq 0 ] || budget=86400  # --cpu: no budget (a loaded 2-core machine needs minutes per run)

log() { echo "[gpu-check] $*"; }
# The JSON of one step: name, status, seconds, then "key": value pairs (values already JSON).
step_json() {
  local name=$1 status=$2 secs=$3 extra=${4:-}
  printf '{"name": "%s", "status": "%s", "seconds": %s%s}\n' "$name" "$status" "$secs" "${extra:+, $extra}" \
    >"$work/results/$(printf '%02d' "$(find "$work/results" -name '*.json' | wc -l)")-$name.json"
}
json_str() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
# Runs a step function with its limit (cut to what is left of the whole budget).
step_deadline=0
run_step() {
  local name=$1 limit=$2 t0=$SECONDS
  [ "$cpu" -eq 0 ] || limit=3600
  local left=$((budget - (SECONDS - t_start)))
  [ "$limit" -le "$left" ] || limit=$left
  if [ "$limit" -le 0 ]; then
    step_json "$name" fail 0 '"error": "no time left in the 9-minute budget"'; return
  fi
  step_deadline=$((SECONDS + limit))
  log "== $name (limit ${limit} s)"
  STEP_EXTRA=""
  if "step_$name"; then
    step_json "$name" "${STEP_STATUS:-pass}" $((SECONDS - t0)) "$STEP_EXTRA"
  else
    local why=${STEP_ERROR:-failed}
    [ "$SECONDS" -lt "$step_deadline" ] || why="timed out after $limit s: $why"
    log "$name: FAIL: $why"
    step_json "$name" fail $((SECONDS - t0)) "\"error\": $(json_str "$why")${STEP_EXTRA:+, $STEP_EXTRA}"
  fi
  STEP_STATUS="" STEP_ERROR=""
}
# A command within the current step's time (exit 124 when it runs out).
limited() {
  local left=$((step_deadline - SECONDS))
  [ "$left" -gt 0 ] || return 124
  timeout -k 5 "$left" "$@"
}
fail() { STEP_ERROR=$1; return 1; }
# Our binaries run with the bundle's libraries (rt: within the step's time); nothing else (python3,
# cmake) does.
rt() { limited env LD_LIBRARY_PATH="$rt_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

# ---- the bundle ---------------------------------------------------------------------------------------
if [ -z "$bundle" ]; then
  for b in "$repo/gpu-bundle" "$repo/gpu-bundle.tar.gz" "$repo/../gpu-bundle" "$repo/../gpu-bundle.tar.gz"; do
    [ -e "$b" ] && { bundle=$b; break; }
  done
fi
[ -n "$bundle" ] && [ -e "$bundle" ] || { echo "check.sh: no bundle (make one with bench/gpu/make-bundle.sh; --bundle PATH)" >&2; exit 2; }
case "$bundle" in
  *.tar.gz|*.tgz)
    dest=$(dirname "$bundle")
    top=$(tar -tzf "$bundle" | head -1 | cut -d/ -f1)
    [ -d "$dest/$top" ] || tar -C "$dest" -xzf "$bundle" || { echo "check.sh: cannot unpack $bundle" >&2; exit 2; }
    bundle=$dest/$top ;;
esac
[ -f "$bundle/env.sh" ] || { echo "check.sh: $bundle is not a bundle (no env.sh)" >&2; exit 2; }
# shellcheck source=bench/gpu/bundle-env.sh
. "$bundle/env.sh"
fixtures=${fixtures:-$NEFTUNE_BUNDLE/fixtures}
fallback_active=$build/bundle-fallback
rt_path=$NEFTUNE_BUNDLE_LIB_PATH:$fallback_active

# Sonames that `ldd` cannot resolve for the given files with the bundle's path (plus "version" lines).
unresolved() {
  LD_LIBRARY_PATH="$rt_path" ldd "$@" 2>&1 | awk '
    / => not found/ { print $1; next }
    /version .* not found/ { for (i = 1; i <= NF; i++) if ($i ~ /^\/.*\.so/) { sub(/:$/, "", $i); n = split($i, p, "/"); print p[n] } }' |
    sort -u
}

# ---- steps --------------------------------------------------------------------------------------------
step_env() {
  local py_torch
  py_torch=$(python3 - 2>/dev/null <<'EOF'
import json
try:
    import torch
    info = {"torch": torch.__version__, "torch_cuda": torch.version.cuda, "cxx11_abi": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
            "cmake_prefix": torch.utils.cmake_prefix_path, "gpus": torch.cuda.device_count()}
    if info["gpus"]:
        info["gpu"] = torch.cuda.get_device_name(0)
        info["sms"] = torch.cuda.get_device_properties(0).multi_processor_count
except Exception as e:  # no torch in this Python
    info = {"torch": None, "error": str(e)}
try:
    import nvidia.nccl, os
    d = list(nvidia.nccl.__path__)[0]
    info["nccl_dir"] = d
except Exception:
    info["nccl_dir"] = None
print(json.dumps(info))
EOF
)
  [ -n "$py_torch" ] || py_torch='{"torch": null}'
  echo "$py_torch" >"$work/python.json"
  get() { python3 -c 'import json, sys; v = json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$work/python.json" "$1"; }
  torch_prefix=$(get cmake_prefix)
  nccl_dir=$(get nccl_dir)
  local nvcc_v glibc os gpu_name driver
  nvcc_v=$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")
  gpu_name=$(get gpu)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  log "os '$os', glibc $glibc, torch $(get torch) (CUDA $(get torch_cuda), cxx11 ABI $(get cxx11_abi)), nvcc ${nvcc_v:-none}, GPU ${gpu_name:-none} (driver ${driver:-none})"
  STEP_EXTRA="\"versions\": {\"os\": $(json_str "$os"), \"glibc\": $(json_str "$glibc"), \"python_torch\": $(cat "$work/python.json"),
    \"nvcc\": $(json_str "$nvcc_v"), \"driver\": $(json_str "$driver"), \"cmake\": $(json_str "$(cmake --version | head -1)"),
    \"ninja\": $(json_str "$(ninja --version 2>/dev/null)"), \"cxx\": $(json_str "$(c++ --version | head -1)"),
    \"bundle_packages\": $(wc -l <"$NEFTUNE_BUNDLE/packages.txt")}"

  # The bundle's libraries against this system: use a fallback library only for what is missing here.
  rm -rf "$fallback_active" && mkdir -p "$fallback_active"
  local libs so f still=""
  mapfile -t libs < <(find "$NEFTUNE_BUNDLE/root" -name '*.so*' -type f)
  for so in $(unresolved "${libs[@]}"); do
    f=$(find "$NEFTUNE_BUNDLE/fallback" -name "$so" -print -quit)
    if [ -n "$f" ]; then
      ln -sf "$f" "$fallback_active/$so"
      log "this system lacks $so (or a new enough one): using the bundle's fallback copy"
    fi
  done
  still=$(unresolved "${libs[@]}" | tr '\n' ' ')
  STEP_EXTRA+=", \"fallback_libraries\": $(json_str "$(ls "$fallback_active" | tr '\n' ' ')")"
  if [ -n "$still" ]; then
    log "MISSING shared libraries (install them, or a bundle made for this system): $still"
    STEP_EXTRA+=", \"missing_libraries\": $(json_str "$still")"
    fail "shared libraries missing: $still"; return
  fi
  if [ "$cpu" -eq 0 ]; then
    [ -n "$torch_prefix" ] || { fail "python3 has no torch (PyTorch with CUDA)"; return; }
    [ "$(get cxx11_abi)" = True ] || { fail "this PyTorch uses the old C++ ABI; the bundle's libraries need the C++11 ABI (PyTorch >= 2.7 wheels)"; return; }
    [ -n "$(get torch_cuda)" ] || { fail "this PyTorch has no CUDA"; return; }
    [ "$(get gpus)" -ge 1 ] 2>/dev/null || { fail "no GPU visible to PyTorch"; return; }
    [ -n "$nccl_dir" ] && [ -f "$nccl_dir/include/nccl.h" ] || { fail "pip package nvidia-nccl-cu13 (headers + lib) not found"; return; }
    command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { fail "nvcc (CUDA toolkit) not found"; return; }
  fi
  [ -f "$fixtures/stories260K/model.safetensors" ] || { fail "fixtures not found in $fixtures (--fixtures DIR)"; return; }
}

step_mpi() {
  local ompi=$MPI_HOME out
  limited cc -O1 -o "$work/mpi_probe" "$repo/bench/gpu/mpi_probe.c" -I"$ompi/include" -L"$ompi/lib" -lmpi \
    -Wl,-rpath-link,"$rt_path" >"$work/mpi_probe.log" 2>&1 || { cat "$work/mpi_probe.log"; fail "cannot build the MPI probe against the bundle"; return; }
  out=$(rt "$work/mpi_probe" 2>&1) || { echo "$out"; fail "MPI_Init as a singleton failed: $(echo "$out" | tail -3 | tr '\n' ' ')"; return; }
  log "singleton: $out"
  STEP_EXTRA="\"probe\": $(json_str "$out")"
}

step_build() {
  local args=(-S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_PREFIX_PATH=${torch_prefix:+$torch_prefix;}$NEFTUNE_BUNDLE_PREFIX_PATH"
    "-DCMAKE_LIBRARY_PATH=$NEFTUNE_BUNDLE/root/usr/lib/x86_64-linux-gnu"
    "-DCMAKE_INCLUDE_PATH=$NEFTUNE_BUNDLE/root/usr/include"
    "-DPKG_CONFIG_EXECUTABLE=$NEFTUNE_BUNDLE/bin/pkg-config"
    # Open MPI from the bundle, not through its compiler wrapper (a Debian binary) nor any MPI on PATH.
    -DMPI_SKIP_COMPILER_WRAPPER=ON -DMPI_C_LIB_NAMES=mpi "-DMPI_mpi_LIBRARY=$MPI_HOME/lib/libmpi.so"
    "-DMPI_C_HEADER_DIR=$MPI_HOME/include" "-DMPIEXEC_EXECUTABLE=$NEFTUNE_BUNDLE/root/usr/bin/orterun"
    # The linker resolves what the bundle's libraries need (libmpi -> libopen-pal, ...) there too.
    "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$rt_path" "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,-rpath-link,$rt_path"
    "-DCMAKE_MODULE_LINKER_FLAGS=-Wl,-rpath-link,$rt_path"
    "-DNEFTUNE_SHARED_DIR=$(dirname "$fixtures")")
  local targets=(neftune bench_gpu)
  if [ "$cpu" -eq 0 ]; then
    local cuda_root
    cuda_root=$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")
    args+=(-DNEFTUNE_WITH_NCCL=ON "-DNCCL_INCLUDE_DIR=$nccl_dir/include"
           "-DNCCL_LIBRARY=$(ls "$nccl_dir"/lib/libnccl.so* | head -1)" "-DCUDAToolkit_ROOT=$cuda_root"
           "-DCMAKE_CUDA_COMPILER=$cuda_root/bin/nvcc")
    targets+=(test_nccl_gpu)
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  fi
  limited cmake "${args[@]}" >"$work/configure.log" 2>&1 || { tail -40 "$work/configure.log"; fail "cmake configure failed (log: $work/configure.log)"; return; }
  grep -E '^-- neftune:' "$work/configure.log"
  if [ "$cpu" -eq 0 ] && ! grep -q 'NCCL backend: ON' "$work/configure.log"; then
    fail "configured without the NCCL backend"; return
  fi
  limited cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >"$work/build.log" 2>&1 ||
    { grep -E -B2 -A12 'error|FAILED' "$work/build.log" | head -80; fail "build failed (log: $work/build.log)"; return; }
  local still
  still=$(unresolved "$build/bin/neftune" "$build/bin/bench_gpu" "$build"/lib/*.so | tr '\n' ' ')
  [ -z "$still" ] || { log "MISSING shared libraries of the built programs: $still"; fail "missing at run time: $still"; return; }
  rt "$build/bin/neftune" --help >/dev/null || { fail "neftune --help failed"; return; }
  STEP_EXTRA="\"configure\": $(json_str "$(grep -E '^-- neftune:' "$work/configure.log" | tr '\n' ' ')")"
}

step_nccl() {
  if [ "$cpu" -eq 1 ]; then STEP_STATUS=skipped; STEP_EXTRA='"reason": "--cpu"'; return 0; fi
  rt "$build/tests/test_nccl_gpu" --gtest_output="json:$work/nccl.json" >"$work/nccl.log" 2>&1
  local rc=$?
  tail -15 "$work/nccl.log"
  local counts
  counts=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(json.dumps({"tests": r["tests"], "failures": r["failures"], "skipped": sum(1 for s in r["testsuites"] for t in s["testsuite"] if t.get("result") == "SKIPPED")}))' "$work/nccl.json" 2>/dev/null || echo null)
  STEP_EXTRA="\"gtest\": $counts"
  [ "$rc" -eq 0 ] || { fail "test_nccl_gpu failed (log: $work/nccl.log)"; return; }
  case "$counts" in *'"skipped": 0'*) ;; *) fail "test_nccl_gpu skipped its tests (no GPU visible to it)"; return ;; esac
}

# A stories260K run: config file for `neftune train` with the given extra YAML lines.
fixture_config() {
  local out=$1 alpha=$2 steps=$3 ckpt=$4
  cat <<EOF
output_dir: $out
model: {path: $fixtures/stories260K, dtype: fp32}
tokenizer: {kind: sentencepiece}
data: {train: $fixtures/instructions/alpaca_data_200.json, format: alpaca, max_seq_len: 256}
neftune: {alpha: $alpha}
train: {micro_batch_size: 4, accumulation_steps: 2, max_steps: $steps, lr: 5.0e-4, warmup_ratio: 0.1, seed: 7}
checkpoint: {every_steps: $ckpt}
logging: {progress: off, level: warn}
EOF
}
# The `--set` options the GPU runs need: the NCCL communicator (even on one rank), TF32 off where the
# build has that key (fp32 matmuls then use full fp32, as on the CPU).
dev_sets=()
device_sets() {
  dev_sets=(--set distributed.backend=mpi)
  [ "$cpu" -eq 1 ] || dev_sets=(--set distributed.backend=nccl)
  if rt "$build/bin/neftune" train --help 2>/dev/null | grep -q 'train\.tf32'; then dev_sets+=(--set train.tf32=false); fi
}
train() { rt "$build/bin/neftune" train "$@"; }
# report STEP WHY ARGS...: check_report.py ARGS as the step's result; the step fails with WHY when it exits 1.
report() {
  local name=$1 why=$2 r rc
  shift 2
  r=$(python3 "$repo/bench/gpu/check_report.py" "$@")
  rc=$?
  log "$name: $r"
  STEP_EXTRA="\"result\": ${r:-null}"
  [ "$rc" -eq 0 ] || fail "$why"
}

step_parity() {
  device_sets
  fixture_config "$work/parity-cpu" 0 30 0 >"$work/parity.yaml"
  train "$work/parity.yaml" --set distributed.backend=mpi >"$work/parity-cpu.log" 2>&1 ||
    { tail -20 "$work/parity-cpu.log"; fail "the CPU run failed"; return; }
  train "$work/parity.yaml" --set output_dir="$work/parity-dev" "${dev_sets[@]}" >"$work/parity-dev.log" 2>&1 ||
    { tail -20 "$work/parity-dev.log"; fail "the GPU run failed"; return; }
  report parity "GPU and CPU losses differ beyond the tolerance" parity "$work/parity-cpu" "$work/parity-dev"
}

step_resume() {
  device_sets
  fixture_config "$work/resume-full" 5 10 5 >"$work/resume.yaml"
  train "$work/resume.yaml" "${dev_sets[@]}" >"$work/resume-full.log" 2>&1 ||
    { tail -20 "$work/resume-full.log"; fail "the uninterrupted run failed"; return; }
  rt env NEFTUNE_INJECT_STOP=5 "$build/bin/neftune" train "$work/resume.yaml" --set output_dir="$work/resume-split" "${dev_sets[@]}" \
    >"$work/resume-split.log" 2>&1
  local rc=$?
  [ "$rc" -eq 75 ] || { tail -20 "$work/resume-split.log"; fail "the run stopped at step 5 exited $rc, not 75"; return; }
  train "$work/resume.yaml" --set output_dir="$work/resume-split" "${dev_sets[@]}" >>"$work/resume-split.log" 2>&1 ||
    { tail -20 "$work/resume-split.log"; fail "the resumed run failed"; return; }
  report resume "resume is not bit-exact" resume "$work/resume-full" "$work/resume-split" 5
}

step_packed() {
  device_sets
  [ -f "$work/resume-full/metrics.jsonl" ] || { fail "no padded run to compare with (the resume step failed)"; return; }
  train "$work/resume.yaml" --set output_dir="$work/packed" --set data.packing=true "${dev_sets[@]}" \
    >"$work/packed.log" 2>&1 || { tail -20 "$work/packed.log"; fail "the packed run failed"; return; }
  report packed "packed and padded losses differ beyond the tolerance" parity "$work/resume-full" "$work/packed"
}

bench() {
  local name=$1; shift
  local args=(--device cuda --dtype bf16 --peak-tflops 989)
  [ "$cpu" -eq 0 ] || args=(--device cpu --dtype fp32 --dim 64 --layers 2 --heads 4 --hidden 172 --peak-tflops 1)
  local r
  r=$(rt "$build/bin/bench_gpu" "${args[@]}" "$@" 2>"$work/$name.log" | tail -1)
  [ -n "$r" ] || { tail -20 "$work/$name.log"; fail "bench_gpu failed (log: $work/$name.log)"; return; }
  log "$name: $r"
  STEP_EXTRA="\"result\": $r"
}
step_throughput() {
  if [ "$cpu" -eq 0 ]; then bench throughput --seq 2048 --batch 4 --warmup 2 --steps 5
  else bench throughput --seq 128 --batch 2 --warmup 1 --steps 2; fi
}
step_memory() {
  if [ "$cpu" -eq 0 ]; then bench memory --seq 4096 --batch 2 --warmup 1 --steps 1 || return
  else bench memory --seq 256 --batch 2 --warmup 0 --steps 1 || return; fi
  [ "$cpu" -eq 1 ] || [[ "$STEP_EXTRA" == *peak_allocated_gib* ]] || fail "no GPU memory figures"
}

# ---- run ----------------------------------------------------------------------------------------------
torch_prefix="" nccl_dir=""
run_step env 15
if grep -q '"status": "fail"' "$work"/results/*-env.json; then
  log "the environment is not ready: the other steps are skipped"
else
  run_step mpi 15
  run_step build 245
  if grep -q '"status": "pass"' "$work"/results/*-build.json; then
    run_step nccl 40
    run_step parity 50
    run_step resume 55
    run_step packed 20
    run_step throughput 60
    run_step memory 40
  fi
fi
log "total $((SECONDS - t_start)) s"
mode=gpu
[ "$cpu" -eq 0 ] || mode=cpu
python3 "$repo/bench/gpu/check_report.py" summary "$out_file" "$mode" $((SECONDS - t_start)) "$work"/results/*.json
