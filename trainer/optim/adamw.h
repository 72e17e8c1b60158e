// AdamW (Loshchilov & Hutter) on flat fp32 shards, matching torch.optim.AdamW:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * wd * p                              on the decay ranges only (decoupled; never on norms,
//                                                 biases or padding)
//   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
// State exists only for the shard this rank owns.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "distributed/flat_unit.h"

namespace neftune::optim {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

struct AdamWState {
  at::Tensor m, v;  // same shape as the shard
};

// One update of `param` in place. `step` is 1-based (the bias correction uses it). Weight decay applies
// to the elements inside `decay_ranges` (ascending, disjoint, within param; FlatUnit::decay_ranges()).
void adamw_update(at::Tensor& param, const at::Tensor& grad, AdamWState& state,
                  const std::vector<dist::IndexRange>& decay_ranges, double lr, int64_t step, const AdamWOptions& o);

}  // namespace neftune::optim
