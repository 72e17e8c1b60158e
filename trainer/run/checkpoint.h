// Sharded, resumable checkpoints that survive crashes, preemption and changes of world size.
//
// <checkpoint.dir>/step-00000020/
//   meta.json                         step, sampler position, world size, model config, unit layout
//   config.yaml                       the effective config that wrote it
//   rank-00000-of-00002.safetensors   this shard of every unit: <unit>/param, <unit>/exp_avg, <unit>/exp_avg_sq
//   config.json + tokenizer files     so `neftune export` needs nothing else
// <checkpoint.dir>/latest             the newest complete checkpoint's name, updated last
//
// A checkpoint is written into .step-00000020.tmp, every file fsynced, then renamed into place; older
// ones are removed (keep_last) only after that. A checkpoint is complete and loadable, or it is ignored:
// resume: auto takes the newest directory whose meta and every rank file validate, the files' bytes
// included (meta.json holds each shard file's size and CRC-32C).
//
// Every checkpoint carries its run's id (meta.json "run_id"): a fresh run draws one, a resumed run keeps
// the checkpoint's. A run prunes only its own checkpoints, and a fresh run refuses a checkpoint.dir that
// holds another run's (Checkpointer::foreign_checkpoints).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/train_config.h"
#include "distributed/world.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/sharded_llama.h"
#include "trainer/optim/adamw.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::run {

struct TrainProgress {
  int64_t step = 0;  // optimizer steps completed
  int64_t sampler_epoch = 0;
  int64_t sampler_position = 0;
};

class Checkpointer {
 public:
  Checkpointer(const config::TrainConfig& cfg, dist::World& world);
  const std::string& root() const { return root_; }

  // Collective. Writes a complete checkpoint of the current state and returns its directory.
  std::string save(const TrainProgress& progress, model::ShardedLlama& model,
                   const std::vector<optim::AdamWState>& optimizer, const tok::Tokenizer& tok);
  // Collective: the checkpoint checkpoint.resume selects, or nullopt to start fresh.
  std::optional<std::string> select_resume();
  // Collective: restores weights and AdamW state (re-slicing when the world size changed) and returns
  // where training stopped. Errors name the file and what is wrong.
  TrainProgress load(const std::string& dir, model::ShardedLlama& model, std::vector<optim::AdamWState>& optimizer);

  // Collective: a fresh run's id, drawn on rank 0 (a resumed run takes its checkpoint's id in load()).
  void start_new_run();
  const std::string& run_id() const { return run_id_; }
  // Rank 0: the checkpoint directories under root() that this run did not write (their meta.json names
  // another run, or cannot be read), oldest first.
  std::vector<std::string> foreign_checkpoints() const;

 private:
  void prune() const;

  config::TrainConfig cfg_;
  dist::World& world_;
  std::string root_;
  std::string run_id_;
  bool fresh_ = false;  // start_new_run() was called: nothing in root() is this run's yet
};

// Rank 0: moves the checkpoints in `root` (step-*, latest, leftovers of saves) into a new directory
// `<root>.replaced-<UTC time>` beside it and returns that directory's path ("" when there was nothing).
std::string move_checkpoints_aside(const std::string& root);

// Checks that `dir` is a complete checkpoint (meta.json, every rank file with every tensor of the
// right size, every file's size and CRC-32C as meta.json records them); throws io::CheckpointError
// naming the file and what is wrong.
void validate_checkpoint(const std::string& dir);

// Reassembles a checkpoint's shards into an HF-format model directory (`neftune export`).
void export_checkpoint(const std::string& dir, const std::string& out_dir, const model::HfWriteOptions& options);

}  // namespace neftune::run
