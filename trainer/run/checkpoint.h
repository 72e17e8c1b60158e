// Sharded, resumable checkpoints that survive crashes, preemption and changes of world size: saving,
// choosing which to resume, loading, and removing old ones. The files are in checkpoint_format.h.
//
// <checkpoint.dir>/step-00000020/     one checkpoint (meta.json, rank files, config.yaml, config.json,
//                                     tokenizer files: so `neftune export` needs nothing else)
// <checkpoint.dir>/latest             the newest complete checkpoint's name, updated last
//
// A checkpoint is written into .step-00000020.tmp, every file written atomically (io::file_write.h),
// then renamed into place; older ones are removed (keep_last) only after that. A save that fails before
// the rename (a full disk: io::WriteError) publishes nothing and removes its partial files. A checkpoint
// is complete and loadable, or it is ignored: resume: auto takes the newest directory whose meta and
// every rank file validate, the files' bytes included (meta.json holds each shard file's size and CRC-32C).
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
#include "trainer/model/sharded_llama.h"
#include "trainer/optim/adamw.h"
#include "trainer/run/checkpoint_format.h"
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

  // The training data file this run reads (none for built-in data): recorded in every checkpoint, and a
  // checkpoint recorded with other data is refused by load().
  void set_train_data(std::optional<ckpt::DataSum> data) { train_data_ = std::move(data); }

  // Collective: a fresh run's id, drawn on rank 0 (a resumed run takes its checkpoint's id in load()).
  void start_new_run();
  const std::string& run_id() const { return run_id_; }
  // Rank 0: the checkpoint directories under root() that this run did not write (their meta.json names
  // another run, or cannot be read), oldest first.
  std::vector<std::string> foreign_checkpoints() const;

 private:
  // save() but for its timing and the clean-up of a failed save: the rank files, then (rank 0) meta.json,
  // config and tokenizer files, and the rename that publishes the checkpoint.
  void write_and_publish(const TrainProgress& progress, model::ShardedLlama& model,
                         const std::vector<optim::AdamWState>& optimizer, const tok::Tokenizer& tok,
                         const std::string& name, int num_shards);
  void prune() const;

  config::TrainConfig cfg_;
  dist::World& world_;
  std::optional<ckpt::DataSum> train_data_;
  std::string root_;
  std::string run_id_;
  bool fresh_ = false;  // start_new_run() was called: nothing in root() is this run's yet
};

// Rank 0: moves the checkpoints in `root` (step-*, latest, leftovers of saves) into a new directory
// `<root>.replaced-<UTC time>` beside it and returns that directory's path ("" when there was nothing).
std::string move_checkpoints_aside(const std::string& root);

}  // namespace neftune::run
