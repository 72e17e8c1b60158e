// Checkpoint save and load time and size for a ~100M-parameter model at the world size it runs on,
// against `dd` writing (and reading) a file of the same size on the same disk in the same run.
// Saves and dd writes alternate for --rounds rounds and the medians are compared: on a VM whose
// host backs guest memory lazily, whichever writes first pays for fresh page-cache pages, and later
// writes reuse the pages the previous one freed (a checkpoint replaced, dd's file removed).
//
//   mpirun -np N build/bin/bench_ckpt [--dir /path/on/the/disk/to/measure]
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "config/config.h"
#include "distributed/world.h"
#include "trainer/run/checkpoint.h"
#include "trainer/run/logging.h"
#include "trainer/run/metrics.h"
#include "trainer/run/trainer.h"

namespace fs = std::filesystem;
using namespace neftune;
using bench::Clock;
using bench::median;
using bench::seconds_since;

namespace {

int64_t dir_bytes(const fs::path& p) {
  int64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(p))
    if (e.is_regular_file()) n += static_cast<int64_t>(e.file_size());
  return n;
}

// Seconds for `dd` to write (fsynced) and then read `mb` MB at `path`.
std::pair<double, double> dd_seconds(const fs::path& path, int64_t mb) {
  const std::string f = (path / "dd.bin").string();
  auto t0 = Clock::now();
  if (std::system(
          ("dd if=/dev/zero of=" + f + " bs=1M count=" + std::to_string(mb) + " conv=fsync status=none").c_str()) != 0)
    return {0, 0};
  const double write = seconds_since(t0);
  t0 = Clock::now();
  if (std::system(("dd if=" + f + " of=/dev/null bs=1M status=none").c_str()) != 0) return {write, 0};
  const double read = seconds_since(t0);
  fs::remove(f);
  return {write, read};
}

}  // namespace

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): a failure ends a benchmark with its message
  CLI::App app{"checkpoint save/load throughput"};
  std::string dir = (fs::temp_directory_path() / "neftune-bench-ckpt").string();
  bench::ModelDims dims{768, 16, 12, 2048};
  app.add_option("--dir", dir, "where to write (the disk to measure)");
  dims.add_options(app);
  int rounds = 3;
  app.add_option("--rounds", rounds, "save / dd write rounds (medians reported)")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  run::tune_allocator();
  auto& world = dist::init_world(&argc, &argv);
  run::setup_console_logging(world.rank, "warn");
  at::set_num_threads(dist::intra_op_threads(world, 0));

  const std::string out = dir + "/run-np" + std::to_string(world.size);
  if (world.rank == 0) fs::remove_all(out);
  world.host->barrier();
  const config::TrainConfig cfg = config::parse_config(
      "", "bench",
      bench::concat(dims.overrides(),
                    {"output_dir=" + out, "model.init.tie_embeddings=false", "data.builtin_train_size=64",
                     "data.builtin_eval_size=0", "data.max_seq_len=64", "train.micro_batch_size=1",
                     "train.max_steps=1000", "checkpoint.keep_last=1", "logging.level=warn", "logging.progress=off"}));
  run::Trainer t(cfg, world);
  t.train_step();  // AdamW state exists

  std::string ckpt;
  std::vector<double> saves, dd_writes, dd_reads;
  for (int r = 0; r < rounds; ++r) {
    world.host->barrier();
    const auto t0 = Clock::now();
    ckpt = t.save_checkpoint();  // the same step each round: replaces the previous round's directory
    world.host->barrier();
    saves.push_back(seconds_since(t0));
    if (world.rank == 0) {
      const auto [w, rd] = dd_seconds(dir, dir_bytes(ckpt) / 1000000 + 1);
      dd_writes.push_back(w);
      dd_reads.push_back(rd);
    }
  }
  const double save_s = median(saves);

  run::Checkpointer loader(cfg, world);
  std::vector<optim::AdamWState> opt(t.model().units().size());
  world.host->barrier();
  auto t0 = Clock::now();
  loader.load(ckpt, t.model(), opt);
  world.host->barrier();
  const double load_s = seconds_since(t0);
  // Again into the same (now resident) buffers: what reading costs without first-touch page faults.
  t0 = Clock::now();
  loader.load(ckpt, t.model(), opt);
  world.host->barrier();
  const double reload_s = seconds_since(t0);

  if (world.rank == 0) {
    const int64_t bytes = dir_bytes(ckpt);
    const double dd_write = median(dd_writes), dd_read = median(dd_reads);
    const double mb = static_cast<double>(bytes) / 1e6;
    const nlohmann::json r = {{"world_size", world.size},
                              {"params", t.model().config().num_parameters()},
                              {"checkpoint_mb", mb},
                              {"rounds", rounds},
                              {"save_s", save_s},
                              {"save_s_first", saves.front()},
                              {"dd_write_s_first", dd_writes.front()},
                              {"load_s_page_cache_warm", load_s},
                              {"save_mb_per_s", mb / save_s},
                              {"load_mb_per_s", mb / load_s},
                              {"reload_into_resident_buffers_s", reload_s},
                              {"reload_mb_per_s", mb / reload_s},
                              {"dd_write_fsync_mb_per_s", mb / dd_write},
                              {"dd_read_mb_per_s", mb / dd_read},
                              {"save_vs_dd_write", dd_write / save_s},
                              {"load_vs_dd_read", dd_read / load_s}};
    std::cout << r.dump(2) << '\n';
    fs::remove_all(out);
  }
  world.host->barrier();
  dist::finalize_world();
  return 0;
}
