// Whether a checkpoint may be resumed by this run: the same model (layout included), the same config
// except for keys that may change on resume (config::may_change_on_resume: the flags of the config
// tree), and the same global batch (the micro-batch split may change with it: that is what resharding
// to another world size needs). Anything else would train
// something other than what the checkpoint holds, so it is refused with what differs and how to fix it.
#pragma once

#include <string>

#include "config/train_config.h"
#include "trainer/model/sharded_llama.h"
#include "trainer/run/checkpoint_format.h"

namespace neftune::run {

// Throws io::CheckpointError naming <dir>/meta.json or <dir> when the checkpoint `m` in `dir` cannot be
// resumed by a run of `cfg` on `world_size` ranks with `model`.
void check_resume_compatible(const std::string& dir, const ckpt::Meta& m, const config::TrainConfig& cfg,
                             const model::ShardedLlama& model, int world_size);

}  // namespace neftune::run
