// NEFTune (arXiv 2310.05914) exactly as the paper's code, with the per-sample length:
//   delta_i = U(-1,1)^(L_i x d) * alpha / sqrt(L_i * d)   on sample i's L_i real tokens, 0 on padding
//   inputs  = embeddings + delta.detach()                   training only
// Each sample's noise is drawn from a generator keyed by (seed, epoch, step, dataset index), so the noise
// a sample gets does not depend on batching, padding, accumulation or world size, and a resumed run
// draws the same noise as an uninterrupted one.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "trainer/data/batch.h"

namespace neftune {

uint64_t noise_key(uint64_t seed, int64_t epoch, int64_t step, int64_t sample_index);

// The noise for a batch of embeddings (R, P, d) whose samples lie at `segments` (one key each):
// (R, P, d), same dtype and device as the embeddings, sample i's noise on its own L_i = segment length
// tokens, zero on every token outside a sample. The same for a sample whether its row is padded or
// packed with others. L_i and the scale are computed in fp32 from the integer lengths.
at::Tensor neftune_noise(const at::Tensor& embeddings, const std::vector<data::Segment>& segments,
                         const std::vector<uint64_t>& keys, double alpha);
// Right-padded rows: sample i is row i, columns [0, lengths[i]).
at::Tensor neftune_noise(const at::Tensor& embeddings, const std::vector<int64_t>& lengths,
                         const std::vector<uint64_t>& keys, double alpha);

// embeddings + noise (detached), keys from the batch's picks at optimizer step `step`, padded or packed.
at::Tensor add_neftune_noise(const at::Tensor& embeddings, const data::Batch& batch, uint64_t seed, int64_t step,
                             double alpha);

}  // namespace neftune
