// Micro-batches: dynamic padding to the longest sample in the batch, right-padded with the
// tokenizer's pad id. The attention mask (1 = real token) carries padding; with right padding and a
// causal mask no real token ever attends to a padded one. Packed micro-batches (packing.h) hold the
// same samples end to end in fewer rows.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "trainer/data/examples.h"
#include "trainer/data/segment.h"

namespace neftune::data {

// Where a sample of a step came from: its dataset index and the epoch it was drawn in.
struct SamplePick {
  int64_t index = 0;
  int64_t epoch = 0;
};

struct Batch {
  at::Tensor input_ids;          // (B, L) int64
  at::Tensor targets;            // (B, L) int64: next token, -100 where there is no loss
  at::Tensor attention_mask;     // (B, L) float: 1 real, 0 padding
  at::Tensor target_rows;        // (N) int64: flat positions i * L + t that have a loss (targets != -100)
  at::Tensor target_ids;         // (N) int64: the targets at those positions
  std::vector<int64_t> lengths;  // real tokens per sample (L_i)
  std::vector<SamplePick> picks;
  std::vector<Segment> segments;  // where each sample (picks order) sits: padded, row i from column 0
  // Packed batches only: (R, P) int64, each token's position within its own sample (RoPE restarts at
  // 0 per sample; the tail's are 0). Undefined for padded batches, whose positions are the columns.
  at::Tensor positions;
  bool packed() const { return positions.defined(); }
  int64_t n_targets = 0;  // positions with a loss
  int64_t n_tokens = 0;   // real tokens
};

Batch collate(const std::vector<Example>& examples, const std::vector<SamplePick>& picks, int32_t pad_id);

// Lays each sample's ids and targets into `b` (input_ids and targets already sized and filled with the
// pad id and -100) at its segment, then fills lengths, counts, the attention mask and the target index.
void fill_samples(Batch& b, const std::vector<Example>& examples);

// A host tensor on `device`. For a GPU the copy goes through pinned memory and does not block the host
// (the compute stream orders it before its first use); on the CPU the tensor itself is returned.
at::Tensor to_device(const at::Tensor& host, const at::Device& device);

}  // namespace neftune::data
