// `neftune export`: a checkpoint's shards reassembled into an HF-format model directory.
#pragma once

#include <string>

#include "trainer/model/hf_checkpoint.h"

namespace neftune::run {

// Validates the checkpoint in `dir`, then writes its weights (one unit in memory at a time) and tokenizer
// files to `out_dir`, which appears complete or not at all. Refuses an `out_dir` that is not empty.
void export_checkpoint(const std::string& dir, const std::string& out_dir, const model::HfWriteOptions& options);

}  // namespace neftune::run
