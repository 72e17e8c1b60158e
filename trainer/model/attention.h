// Scaled dot-product attention over absolute positions: causal, optionally limited to a sliding window.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "trainer/data/segment.h"

namespace neftune::model {

// q (B, H, L, hd); k, v (B, H, T, hd) with T = pos0 + L: query i sits at position pos0 + i and sees key j
// when j <= pos0 + i and, with window > 0, pos0 + i - window < j (HF's sliding window: the last
// `window` positions, itself included). window 0 = unbounded. Returns (B, H, L, hd).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t pos0, int64_t window = 0);

// Packed rows: q, k, v (R, H, P, hd). Each segment's queries see only that segment's keys, causally
// and within the window, at positions that restart at 0; columns outside every segment (a row's tail)
// get 0. Runs attention() on each segment alone: the cost is sum of L_i^2, never P^2, and no (P, P) mask
// or score matrix exists.
at::Tensor packed_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const std::vector<data::Segment>& segments, int64_t window = 0);

// The additive mask of attention(): (L, T), 0 where a query sees a key, -inf elsewhere.
at::Tensor attention_mask(int64_t L, int64_t T, int64_t pos0, int64_t window, const at::TensorOptions& options);

// The attention kernel this build compiled: "sdpa" (at::scaled_dot_product_attention, LibTorch >= 2:
// flash / memory-efficient kernels, no (B, H, L, L) scores) or "explicit" (matmul + softmax, LibTorch 1.x).
const char* attention_path();

}  // namespace neftune::model
