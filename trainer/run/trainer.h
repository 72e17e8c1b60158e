// The training run: setup (tokenizer, model, data, sharding), the optimizer-step loop, eval, metrics
// and the final HF export. train() reads top to bottom; one step is train_step().
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/train_config.h"
#include "distributed/backend.h"
#include "distributed/world.h"
#include "trainer/data/sampler.h"
#include "trainer/model/sharded_llama.h"
#include "trainer/optim/adamw.h"
#include "trainer/run/checkpoint.h"
#include "trainer/run/datasets.h"
#include "trainer/run/metrics.h"
#include "trainer/run/run_dirs.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::run {

struct StepStats {
  int64_t step = 0;  // 1-based number of the optimizer step just taken
  double epoch = 0;  // epochs consumed, fractional
  double loss = 0;
  double lr = 0;
  double grad_norm = 0;
  int64_t tokens = 0;   // real tokens in the step, all ranks
  int64_t targets = 0;  // tokens with a loss, all ranks
  double seconds = 0;
};

struct TrainSummary {
  int64_t steps = 0;
  bool preempted = false;            // stopped by a signal after writing a checkpoint
  std::optional<double> final_loss;  // the last step's; none when a resumed run had no step left to run
  std::optional<double> final_eval_loss;
  std::string final_dir;
};

// Optional observers of a run (the daemon's job status): called on rank 0 and every other rank alike.
struct TrainObserver {
  std::function<void(const StepStats& s, int64_t total_steps)> on_step;
  std::function<void(int64_t step, double eval_loss)> on_eval;
};

struct TrainerOptions {
  // A fresh run in a checkpoint directory that holds another run's checkpoints moves them aside
  // (`neftune train --overwrite`) instead of refusing to start.
  bool overwrite = false;
};

class Trainer {
 public:
  // Collective: every rank constructs it with the same config. Setup failures are reported on every
  // rank (dist::agree) with the same message.
  Trainer(config::TrainConfig cfg, dist::World& world, TrainerOptions options = {});
  TrainSummary train();
  void set_observer(TrainObserver observer) { observer_ = std::move(observer); }

  // For tests and benchmarks.
  StepStats train_step();
  double evaluate();
  std::string save_checkpoint();
  model::ShardedLlama& model() { return *model_; }
  const Datasets& datasets() const { return data_; }
  int64_t total_steps() const { return total_steps_; }

 private:
  void setup();
  void write_step_metrics(const StepStats& s, double peak_rss);
  void export_final(const std::string& dir);
  bool rank0() const { return world_.rank == 0; }

  config::TrainConfig cfg_;
  dist::World& world_;
  TrainerOptions options_;
  std::unique_ptr<RunDirs> dirs_;  // rank 0: output_dir and checkpoint.dir, locked while the run lives
  dist::TrainingComm tc_;
  std::unique_ptr<tok::Tokenizer> tok_;
  model::LlamaConfig mcfg_;
  std::unique_ptr<model::ShardedLlama> model_;
  Datasets data_;
  std::unique_ptr<data::EpochSampler> sampler_;
  std::vector<optim::AdamWState> opt_state_;
  std::vector<std::vector<dist::IndexRange>> decay_ranges_;  // per unit: where AdamW decays
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<Checkpointer> checkpointer_;
  int64_t step_ = 0;         // optimizer steps taken
  int64_t saved_step_ = -1;  // the step of the newest checkpoint this run wrote or resumed from
  TrainObserver observer_;
  int64_t total_steps_ = 0;
  int64_t pack_length_ = 0;  // tokens per packed row; 0 = padded batches
};

}  // namespace neftune::run
