// FSDP figures, run under mpirun (see README "Benchmarks"):
//   memory: per-rank memory of model state (params + grads + AdamW m, v) for a ~100M-parameter model,
//           accounted from the shards and measured as resident memory, at the world size it runs on.
//   speed:  step time of sharding full vs none and prefetch on vs off (steps interleaved, medians), and
//           bytes moved per step per rank against ZeRO-3's 3 x params x dtype size.
//
//   mpirun -np N build/bin/bench_fsdp --mode memory
//   mpirun -np 2 build/bin/bench_fsdp --mode speed
#include <ATen/Parallel.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "bench/counting_allocator.h"
#include "config/config.h"
#include "distributed/world.h"
#include "trainer/run/logging.h"
#include "trainer/run/metrics.h"
#include "trainer/run/trainer.h"

namespace fs = std::filesystem;
using namespace neftune;
using bench::median;

namespace {

double rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): a failure ends a benchmark with its message
  CLI::App app{"FSDP memory and communication figures"};
  std::string mode = "memory", dtype = "fp32";
  bench::ModelDims dims{768, 16, 12, 2048};
  int64_t seq = 64, batch = 1;
  int steps = 5;
  bool prefetch = true;
  app.add_option("--mode", mode)->check(CLI::IsMember({"memory", "speed"}));
  app.add_option("--dtype", dtype, "param_dtype (all-gather wire dtype)")->check(CLI::IsMember({"fp32", "bf16"}));
  dims.add_options(app);
  app.add_option("--seq", seq);
  app.add_option("--batch", batch);
  app.add_option("--steps", steps);
  app.add_option("--prefetch", prefetch, "memory mode: prefetch the next unit (one more gathered unit)");
  CLI11_PARSE(app, argc, argv);
  // Memory mode leaves glibc's default: freed buffers go back to the kernel, so the peak resident size
  // is the peak of live memory (the tuned allocator keeps every freed buffer resident).
  if (mode == "speed") run::tune_allocator();
  auto& world = dist::init_world(&argc, &argv);
  run::setup_console_logging(world.rank, "warn");
  at::set_num_threads(dist::intra_op_threads(world, 0));

  const fs::path dir = fs::temp_directory_path() / ("neftune-bench-fsdp-" + std::to_string(getpid()));
  auto make_config = [&](const std::string& name, const std::string& sharding, bool prefetch) {
    return config::parse_config(
        "", "bench",
        bench::concat(
            dims.overrides(),
            {"output_dir=" + (dir / name).string(), "model.init.tie_embeddings=false", "data.builtin_train_size=256",
             "data.builtin_eval_size=0", "data.max_seq_len=" + std::to_string(seq), "data.too_long=truncate",
             "train.micro_batch_size=" + std::to_string(batch), "train.max_steps=1000", "train.lr=1e-5",
             "distributed.sharding=" + sharding, std::string("distributed.prefetch=") + (prefetch ? "true" : "false"),
             "distributed.param_dtype=" + dtype, "logging.level=warn", "logging.progress=off"}));
  };

  nlohmann::json out = {{"mode", mode}, {"world_size", world.size}, {"param_dtype", dtype}};
  if (mode == "memory") {
    world.host->barrier();
    auto& counter = bench::CountingAllocator::install();
    const double tensors_before = static_cast<double>(counter.current());
    const double before = rss_mb(), peak_before = run::peak_rss_mb();
    run::Trainer t(make_config("mem", "full", prefetch), world);
    out["prefetch"] = prefetch;
    for (int i = 0; i < 2; ++i) t.train_step();  // AdamW state exists after the first step
    // A third step with the peak reset: its peak of live tensor bytes is the steady-state peak.
    counter.reset_peak();
    t.train_step();
    const double after = rss_mb();
    double state_bytes = 0, largest_unit = 0;
    for (auto* u : t.model().units()) {
      state_bytes += 4.0 * 4.0 * static_cast<double>(u->params().numel());  // params, grads, m, v (fp32)
      largest_unit = std::max(largest_unit, 4.0 * static_cast<double>(u->layout().padded_numel));
    }
    out["params"] = t.model().config().num_parameters();
    // The figure to compare across world sizes: peak bytes held by tensors during a training step
    // (model state + gathered units + gradients in flight + activations of batch 1 x seq 64).
    out["peak_tensor_mb_per_rank_max"] = world.host->all_reduce_scalar(
        (static_cast<double>(counter.peak()) - tensors_before) / 1e6, dist::ReduceOp::max);
    out["model_state_mb_per_rank_accounted"] = world.host->all_reduce_scalar(state_bytes / 1e6, dist::ReduceOp::max);
    out["gathered_unit_buffers_mb"] = (prefetch ? 2 : 1) * largest_unit / 1e6;  // in use (+ prefetched)
    out["rss_growth_after_step_mb_per_rank_max"] = world.host->all_reduce_scalar(after - before, dist::ReduceOp::max);
    // Peak resident memory above what the process held before the model existed: model state, the
    // gathered units and unsharded gradient in flight, activations (small here: batch 1 x seq 64).
    out["peak_growth_mb_per_rank_max"] =
        world.host->all_reduce_scalar(run::peak_rss_mb() - std::max(before, peak_before), dist::ReduceOp::max);
  } else {
    struct Contender {
      std::string name;
      std::unique_ptr<run::Trainer> t;
      std::vector<double> seconds;
      double bytes = 0;
    };
    std::vector<Contender> cs;
    cs.push_back({"full_prefetch", std::make_unique<run::Trainer>(make_config("a", "full", true), world), {}, 0});
    cs.push_back({"full_no_prefetch", std::make_unique<run::Trainer>(make_config("b", "full", false), world), {}, 0});
    cs.push_back({"grad_op", std::make_unique<run::Trainer>(make_config("c", "grad_op", true), world), {}, 0});
    cs.push_back({"none", std::make_unique<run::Trainer>(make_config("d", "none", true), world), {}, 0});
    for (auto& c : cs) c.t->train_step();  // warm-up
    for (int i = 0; i < steps; ++i) {
      for (auto& c : cs) {
        c.t->model().reset_comm_bytes();
        c.seconds.push_back(c.t->train_step().seconds);
        c.bytes = static_cast<double>(c.t->model().comm_bytes());
      }
    }
    const double params = static_cast<double>(cs[0].t->model().config().num_parameters());
    const double elem = dtype == "bf16" ? 2.0 : 4.0;
    const double n = world.size;
    // ZeRO-3 per rank and step: all-gather for forward and for backward (param_dtype) and a
    // reduce-scatter of gradients (fp32 here), each (N-1)/N of the full model.
    out["zero3_theoretical_bytes_per_rank"] = (2 * elem + 4.0) * params * (n - 1) / n;
    out["params"] = params;
    for (auto& c : cs) {
      out[c.name] = {{"step_s_median", median(c.seconds)}, {"bytes_per_step_per_rank", c.bytes}};
    }
    out["time_ratio_full_vs_none"] = median(cs[0].seconds) / median(cs[3].seconds);
    out["time_ratio_prefetch_on_vs_off"] = median(cs[0].seconds) / median(cs[1].seconds);
  }
  if (world.rank == 0) std::cout << out.dump(2) << '\n';
  world.host->barrier();
  if (world.rank == 0) fs::remove_all(dir);
  dist::finalize_world();
  return 0;
}
