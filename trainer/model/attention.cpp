#include "trainer/model/attention.h"

#include <torch/version.h>

#include <cmath>
#include <limits>

namespace neftune::model {

const char* attention_path() {
#if TORCH_VERSION_MAJOR >= 2
  return "sdpa";
#else
  return "explicit";
#endif
}

at::Tensor attention_mask(int64_t L, int64_t T, int64_t pos0, int64_t window, const at::TensorOptions& options) {
  const at::Tensor inf = at::full({L, T}, -std::numeric_limits<float>::infinity(), options);
  // Key j - query i > pos0: the future. Key j - query i <= pos0 - window: out of the window.
  at::Tensor mask = inf.triu(pos0 + 1);
  if (window > 0 && T > window) mask = mask + inf.tril(pos0 - window);
  return mask;
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t pos0, int64_t window) {
  const int64_t L = q.size(2), T = k.size(2);
  const bool banded = window > 0 && T > window;  // some query has keys outside its window
#if TORCH_VERSION_MAJOR >= 2
  if (!banded && pos0 == 0 && L == T) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
  if (!banded && L == 1) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false);
  if (banded) return at::scaled_dot_product_attention(q, k, v, attention_mask(L, T, pos0, window, q.options()), 0.0, false);
#endif
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * scale;  // (B,H,L,T)
  if (L > 1 || banded) scores = scores + attention_mask(L, T, pos0, window, scores.options());
  // HF computes softmax(scores, dtype=fp32).to(dtype). LibTorch's softmax kernels accumulate in fp32 for
  // bf16/fp16 inputs and round the output once, which gives the same probabilities (a test checks it)
  // without materialising (B,H,L,T) in fp32 forward and backward.
  const at::Tensor probs = at::softmax(scores, -1);
  return at::matmul(probs, v);  // (B,H,L,hd)
}

}  // namespace neftune::model
