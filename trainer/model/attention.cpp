#include "trainer/model/attention.h"

#include <torch/version.h>

#include <algorithm>
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
  if (banded)
    return at::scaled_dot_product_attention(q, k, v, attention_mask(L, T, pos0, window, q.options()), 0.0, false);
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

at::Tensor packed_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const std::vector<data::Segment>& segments, int64_t window) {
  const int64_t R = q.size(0), P = q.size(2);
  std::vector<std::vector<data::Segment>> by_row(static_cast<size_t>(R));
  for (const data::Segment& s : segments) {
    TORCH_CHECK(s.row >= 0 && s.row < R && s.start >= 0 && s.length >= 0 && s.start + s.length <= P,
                "packed_attention: a segment lies outside its row");
    if (s.length > 0) by_row[static_cast<size_t>(s.row)].push_back(s);
  }
  // split / split_with_sizes rather than narrow: their backward is one cat, where each narrow's would
  // write its slice into a zero tensor of the whole input.
  const std::vector<at::Tensor> q_rows = q.split(1, 0), k_rows = k.split(1, 0), v_rows = v.split(1, 0);
  std::vector<at::Tensor> rows;
  for (int64_t r = 0; r < R; ++r) {
    auto& segs = by_row[static_cast<size_t>(r)];
    std::sort(segs.begin(), segs.end(),
              [](const data::Segment& a, const data::Segment& b) { return a.start < b.start; });
    std::vector<int64_t> sizes;
    std::vector<bool> is_sample;
    int64_t col = 0;
    for (const data::Segment& s : segs) {
      TORCH_CHECK(s.start >= col, "packed_attention: segments of row ", r, " overlap");
      if (s.start > col) {
        sizes.push_back(s.start - col);
        is_sample.push_back(false);
      }
      sizes.push_back(s.length);
      is_sample.push_back(true);
      col = s.start + s.length;
    }
    if (P > col) {
      sizes.push_back(P - col);
      is_sample.push_back(false);
    }
    const std::vector<at::Tensor> qs = q_rows[r].split_with_sizes(sizes, 2), ks = k_rows[r].split_with_sizes(sizes, 2),
                                  vs = v_rows[r].split_with_sizes(sizes, 2);
    std::vector<at::Tensor> pieces;
    pieces.reserve(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i)
      pieces.push_back(is_sample[i] ? attention(qs[i], ks[i], vs[i], 0, window) : at::zeros_like(qs[i]));
    rows.push_back(pieces.size() == 1 ? pieces[0] : at::cat(pieces, 2));
  }
  return R == 1 ? rows[0] : at::cat(rows, 0);
}

}  // namespace neftune::model
