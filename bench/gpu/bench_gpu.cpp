// One Trainer on one device (a world of one process): tokens/s and model FLOP utilisation (MFU) of the
// optimizer step of a random-init LLaMA, and the peak device memory of one step. What
// bench/gpu/check.sh measures on a GPU; `--device cpu` runs the same on the CPU (a dry run of the script).
//
//   build/bin/bench_gpu [--device cuda|cpu] [--dtype bf16|fp32] [--dim 2048] [--layers 20] [--heads 16]
//                       [--hidden 5632] [--seq 2048] [--batch 4] [--warmup 2] [--steps 5] [--peak-tflops 989]
//
// Model FLOPs of a step (PaLM, appendix B; no recomputation counted):
//   6 * N * T  +  12 * layers * B * seq^2 * dim
// N = parameters (the tied embedding counted once, as the LM-head matmul; its lookup is no matmul),
// T = B * seq tokens: 2 FLOPs per weight and token forward, 4 backward. The second term is the
// attention scores and their product with V (forward 4 * B * seq^2 * dim per layer, backward twice
// that), counted for the full square as PaLM does; a causal kernel skips half of it, so MFU against
// `--peak-tflops` slightly overstates the work of a causal kernel. Every sample is `seq` tokens long.
//
// Each timed step is bracketed by device synchronisations. Peak memory: the CUDA caching allocator's
// device statistics, reset right before the last timed step (so it is one step at steady state: the
// model state and optimizer state that outlive the step are in it, as they are on the device).
#include <ATen/Parallel.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "bench/bench_util.h"
#include "config/config.h"
#include "distributed/world.h"
#include "trainer/run/logging.h"
#include "trainer/run/trainer.h"

#ifdef NEFTUNE_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace fs = std::filesystem;
using namespace neftune;
using bench::Clock;
using bench::seconds_since;

namespace {

void synchronize(bool cuda) {
#ifdef NEFTUNE_TORCH_CUDA
  if (cuda) c10::cuda::device_synchronize();
#else
  (void)cuda;
#endif
}

// Peak bytes allocated (tensors) and reserved (the caching allocator's segments) since the last reset.
struct DeviceMemory {
  double allocated_gib = 0, reserved_gib = 0;
};

void reset_peak_memory(bool cuda) {
#ifdef NEFTUNE_TORCH_CUDA
  if (cuda) c10::cuda::CUDACachingAllocator::resetPeakStats(c10::cuda::current_device());
#else
  (void)cuda;
#endif
}

std::optional<DeviceMemory> peak_memory(bool cuda) {
#ifdef NEFTUNE_TORCH_CUDA
  if (cuda) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device());
    const size_t all = 0;  // StatType::AGGREGATE (the enum moved between LibTorch namespaces)
    return DeviceMemory{static_cast<double>(stats.allocated_bytes[all].peak) / (1 << 30),
                        static_cast<double>(stats.reserved_bytes[all].peak) / (1 << 30)};
  }
#else
  (void)cuda;
#endif
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): a failure ends a benchmark with its message
  CLI::App app{"neftune train step on one device: tokens/s, MFU, peak memory"};
  std::string device = "cuda", dtype = "bf16";
  int steps = 5, warmup = 2, threads = 0;
  double peak_tflops = 989.0;                 // H100/H200 SXM dense bf16
  bench::ModelDims dims{2048, 20, 16, 5632};  // 1.03e9 parameters
  int64_t seq = 2048, batch = 4;
  app.add_option("--device", device)->check(CLI::IsMember({"cuda", "cpu"}));
  app.add_option("--dtype", dtype)->check(CLI::IsMember({"fp32", "bf16"}));
  dims.add_options(app);
  app.add_option("--seq", seq);
  app.add_option("--batch", batch);
  app.add_option("--warmup", warmup, "untimed steps first (allocator, kernel selection)");
  app.add_option("--steps", steps, "timed steps")->check(CLI::PositiveNumber);
  app.add_option("--peak-tflops", peak_tflops, "the device's dense peak in this dtype, for MFU");
  app.add_option("--threads", threads, "intra-op threads; 0 = all cores");
  CLI11_PARSE(app, argc, argv);
  const bool cuda = device == "cuda";

  run::tune_allocator();
  auto& world = dist::init_world(&argc, &argv);
  run::setup_console_logging(world.rank, "warn");
  at::set_num_threads(dist::intra_op_threads(world, threads));
  if (cuda && !at::hasCUDA()) {
    std::cerr << "bench_gpu: --device cuda, but this LibTorch has no CUDA or no GPU is visible\n";
    return 2;
  }

  const fs::path dir = fs::temp_directory_path() / ("neftune-bench-gpu-" + std::to_string(getpid()));
  fs::create_directories(dir);
  bench::write_full_length_records((dir / "data.jsonl").string(), seq, 16);
  // backend auto: one process on a GPU trains there with no communicator; mpi keeps it on the CPU.
  run::Trainer trainer(
      config::parse_config(
          "", "bench",
          bench::concat(dims.overrides(),
                        {"output_dir=" + (dir / "run").string(), "data.train=" + (dir / "data.jsonl").string(),
                         "data.max_seq_len=" + std::to_string(seq), "model.init.max_seq_len=" + std::to_string(seq),
                         "model.dtype=" + dtype, "distributed.param_dtype=" + dtype,
                         std::string("distributed.backend=") + (cuda ? "auto" : "mpi"),
                         "train.micro_batch_size=" + std::to_string(batch), "train.max_steps=1000", "train.lr=1e-4",
                         "neftune.alpha=5", "logging.level=warn", "logging.progress=off"})),
      world);

  for (int i = 0; i < warmup; ++i) trainer.train_step();
  std::vector<double> times;
  int64_t tokens = 0;
  std::optional<DeviceMemory> memory;
  for (int i = 0; i < steps; ++i) {
    synchronize(cuda);
    if (i == steps - 1) reset_peak_memory(cuda);
    const auto t0 = Clock::now();
    tokens = trainer.train_step().tokens;
    synchronize(cuda);
    times.push_back(seconds_since(t0));
    if (i == steps - 1) memory = peak_memory(cuda);
  }
  const double step_s = bench::median(times);
  const auto& mc = trainer.model().config();
  const double params = static_cast<double>(mc.num_parameters());
  const double flops = 6.0 * params * static_cast<double>(tokens) +
                       12.0 * static_cast<double>(dims.layers * batch * seq) * static_cast<double>(seq * dims.dim);
  nlohmann::json r = {{"device", device},
                      {"dtype", dtype},
                      {"params", mc.num_parameters()},
                      {"layers", dims.layers},
                      {"dim", dims.dim},
                      {"batch", batch},
                      {"seq", seq},
                      {"tokens_per_step", tokens},
                      {"step_s_median", step_s},
                      {"tokens_per_s", static_cast<double>(tokens) / step_s},
                      {"model_tflops_per_step", flops / 1e12},
                      {"achieved_tflops", flops / step_s / 1e12},
                      {"peak_tflops", peak_tflops},
                      {"mfu", flops / step_s / 1e12 / peak_tflops}};
  if (memory) {
    r["peak_allocated_gib"] = memory->allocated_gib;
    r["peak_reserved_gib"] = memory->reserved_gib;
  }
  std::cout << r.dump() << '\n';
  fs::remove_all(dir);
  dist::finalize_world();
  return 0;
}
