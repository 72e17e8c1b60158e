#include "trainer/model/rope.h"

#include <cmath>
#include <vector>

namespace neftune::model {

at::Tensor rope_inv_freq(const LlamaConfig& c) {
  const int64_t hd = c.head_dim;
  // Every step in fp32 tensors with double scalars, the order of HF's expressions: the same roundings.
  const at::Tensor exponent = at::arange(0, hd, 2, at::kLong).to(at::kFloat) / static_cast<double>(hd);
  at::Tensor inv_freq = 1.0 / at::pow(c.rope_theta, exponent);  // (hd/2)
  const RopeScaling& s = c.rope_scaling;
  switch (s.type) {
    case RopeScaling::Type::none:
      return inv_freq;
    case RopeScaling::Type::linear:
      return inv_freq / s.factor;
    case RopeScaling::Type::llama3: {
      const double old_len = static_cast<double>(s.original_max_position_embeddings);
      const double low_freq_wavelen = old_len / s.low_freq_factor;
      const double high_freq_wavelen = old_len / s.high_freq_factor;
      // Python's `scalar / tensor` is tensor.reciprocal() * scalar: written so here.
      const at::Tensor wavelen = inv_freq.reciprocal() * (2 * M_PI);
      // Long wavelengths (low frequencies) are divided by factor, short ones kept.
      const at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
      const at::Tensor smooth =
          (wavelen.reciprocal() * old_len - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      const at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
      const at::Tensor medium =
          at::logical_not(wavelen < high_freq_wavelen).logical_and(at::logical_not(wavelen > low_freq_wavelen));
      return at::where(medium, smoothed, scaled);
    }
  }
  return inv_freq;
}

Rope::Rope(const LlamaConfig& c, at::Device device)
    : max_positions_(c.max_position_embeddings), inv_freq_(rope_inv_freq(c)), device_(device) {}

void Rope::reserve(int64_t len) {
  TORCH_CHECK(len <= max_positions_, "RoPE: a sequence of ", len, " positions exceeds max_position_embeddings ",
              max_positions_);
  if (len <= length()) return;
  std::vector<at::Tensor> cos_parts, sin_parts;
  if (cos.defined()) {
    cos_parts.push_back(cos);
    sin_parts.push_back(sin);
  }
  // Whole blocks: the elementwise kernels see the same shapes whatever the length, so they round alike.
  for (int64_t p0 = length(); p0 < len; p0 += kBlock) {
    const at::Tensor pos = at::arange(p0, p0 + kBlock, at::kLong).to(at::kFloat);  // (kBlock)
    const at::Tensor freqs = at::outer(pos, inv_freq_);                            // (kBlock, hd/2)
    const at::Tensor emb = at::cat({freqs, freqs}, -1);                            // (kBlock, hd)
    cos_parts.push_back(emb.cos().to(device_));
    sin_parts.push_back(emb.sin().to(device_));
  }
  cos = at::cat(cos_parts, 0);
  sin = at::cat(sin_parts, 0);
  if (cos.size(0) > max_positions_) {  // never past the model's limit
    cos = cos.narrow(0, 0, max_positions_);
    sin = sin.narrow(0, 0, max_positions_);
  }
}

namespace {
at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}
}  // namespace

at::Tensor apply_rope(const at::Tensor& x, const Rope& rope, int64_t pos0) {
  const int64_t L = x.size(-2);
  TORCH_CHECK(pos0 + L <= rope.length(), "RoPE tables cover ", rope.length(), " positions, not ", pos0 + L,
              " (Rope::reserve first)");
  const at::Tensor cos = rope.cos.narrow(0, pos0, L).to(x.scalar_type());  // (L,hd)
  const at::Tensor sin = rope.sin.narrow(0, pos0, L).to(x.scalar_type());
  return x * cos + rotate_half(x) * sin;
}

at::Tensor apply_rope(const at::Tensor& x, const Rope& rope, const at::Tensor& positions) {
  const int64_t R = x.size(0), P = x.size(-2), hd = x.size(-1);
  TORCH_CHECK(positions.dim() == 2 && positions.size(0) == R && positions.size(1) == P,
              "apply_rope: positions must be (rows, length)");
  const at::Tensor flat = positions.reshape({-1});
  const at::Tensor cos = rope.cos.index_select(0, flat).view({R, 1, P, hd}).to(x.scalar_type());
  const at::Tensor sin = rope.sin.index_select(0, flat).view({R, 1, P, hd}).to(x.scalar_type());
  return x * cos + rotate_half(x) * sin;
}

}  // namespace neftune::model
