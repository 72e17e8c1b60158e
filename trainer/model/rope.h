// Rotary position embeddings, HF's convention: cos/sin of position x inverse frequency, the frequencies
// repeated over both halves of a head, applied with rotate_half.
#pragma once

#include <ATen/ATen.h>

#include "trainer/model/llama_config.h"

namespace neftune::model {

// The inverse frequencies (head_dim / 2) in fp32, computed as HF does: 1 / rope_theta^(2j / head_dim),
// then rope_scaling: linear divides them all by factor; llama3 (HF's _compute_llama3_parameters)
// divides those with wavelength 2 pi / f above original_max_position_embeddings / low_freq_factor by
// factor, keeps those below original_max_position_embeddings / high_freq_factor, and blends the band
// between.
at::Tensor rope_inv_freq(const LlamaConfig& c);

// cos/sin tables (length, head_dim) in fp32 for the positions a model has run so far: reserve() extends
// them on demand, never to max_position_embeddings up front (HF configs say 131072 and more; a
// config.json may say anything).
class Rope {
 public:
  Rope() = default;
  Rope(const LlamaConfig& c, at::Device device);
  // Makes the tables cover positions [0, len) (len <= max_position_embeddings), adding whole blocks of
  // kBlock positions, each computed alone: a position's values never depend on how long the tables are.
  void reserve(int64_t len);
  int64_t length() const { return cos.defined() ? cos.size(0) : 0; }

  at::Tensor cos, sin;  // (length, head_dim)

 private:
  static constexpr int64_t kBlock = 64;
  int64_t max_positions_ = 0;
  at::Tensor inv_freq_;  // (head_dim / 2) fp32 on the CPU
  at::Device device_ = at::kCPU;
};

// x * cos + rotate_half(x) * sin for x (B, H, L, hd) at positions [pos0, pos0 + L); `rope` must cover them.
at::Tensor apply_rope(const at::Tensor& x, const Rope& rope, int64_t pos0);
// The same at any positions: x (R, H, P, hd), positions (R, P) int64 on x's device, all covered by `rope`.
at::Tensor apply_rope(const at::Tensor& x, const Rope& rope, const at::Tensor& positions);

}  // namespace neftune::model
