// The LM head (final norm + projection to the vocabulary) and the cross-entropy over the positions
// with a target, a chunk of positions at a time. The full (N, vocab) fp32 logits of a micro-batch are
// the largest tensor of a step with a large vocabulary (8 x 2048 targets x 128256 x 4 B = 8.4 GB, and
// as much again for the log-softmax and for each gradient); in chunks only one chunk's are alive.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <utility>

#include "trainer/model/llama_config.h"

namespace neftune::model {

// (final norm weight (d), head weight (V, d)), taken afresh for every chunk: each chunk's backward
// runs through a graph of its own.
using HeadWeights = std::function<std::pair<at::Tensor, at::Tensor>()>;

// Sum over i of cross_entropy(lm_logits(x[rows[i]]), ids[i]) with x (M, d), rows and ids (N) int64,
// `chunk` positions at a time (0 or >= N: all at once). With `backward_scale` every chunk's loss times
// it is back-propagated before the next chunk's logits are made, so gradients accumulate into x's
// graph and the head weights'; the same gradients as one backward of the whole sum, up to the order
// of the sums. The sum comes back detached, fp32.
at::Tensor chunked_head_loss(const LlamaConfig& config, const HeadWeights& weights, const at::Tensor& x,
                             const at::Tensor& rows, const at::Tensor& ids, int64_t chunk,
                             std::optional<double> backward_scale);

}  // namespace neftune::model
