// Micro-batches: dynamic padding to the longest sample in the batch, right-padded with the
// tokenizer's pad id. The attention mask (1 = real token) carries padding; with right padding and a
// causal mask no real token ever attends to a padded one.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "trainer/data/examples.h"

namespace neftune::data {

// Where a sample of a step came from: its dataset index and the epoch it was drawn in.
struct SamplePick {
  int64_t index = 0;
  int64_t epoch = 0;
};

struct Batch {
  at::Tensor input_ids;       // (B, L) int64
  at::Tensor targets;         // (B, L) int64: next token, -100 where there is no loss
  at::Tensor attention_mask;  // (B, L) float: 1 real, 0 padding
  at::Tensor target_rows;     // (N) int64: flat positions i * L + t that have a loss (targets != -100)
  at::Tensor target_ids;      // (N) int64: the targets at those positions
  std::vector<int64_t> lengths;  // real tokens per sample (L_i)
  std::vector<SamplePick> picks;
  int64_t n_targets = 0;         // positions with a loss
  int64_t n_tokens = 0;          // real tokens
};

Batch collate(const std::vector<Example>& examples, const std::vector<SamplePick>& picks, int32_t pad_id);

// A host tensor on `device`. For a GPU the copy goes through pinned memory and does not block the host
// (the compute stream orders it before its first use); on the CPU the tensor itself is returned.
at::Tensor to_device(const at::Tensor& host, const at::Device& device);

}  // namespace neftune::data
