#include "trainer/neftune.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "trainer/data/rng.h"

#ifdef NEFTUNE_TORCH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

namespace neftune {

uint64_t noise_key(uint64_t seed, int64_t epoch, int64_t step, int64_t sample_index) {
  return data::mix_key({seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(step),
                        static_cast<uint64_t>(sample_index), 0x4E45465455ull /* "NEFTU" */});
}

namespace {

// A generator for `device` seeded with `key`.
at::Generator keyed_generator(uint64_t key, const at::Device& device) {
#ifdef NEFTUNE_TORCH_CUDA
  if (device.is_cuda()) {
    at::Generator gen = at::cuda::detail::createCUDAGenerator(device.index());
    gen.set_current_seed(key);
    return gen;
  }
#endif
  TORCH_CHECK(device.is_cpu(), "neftune_noise: no generator for device ", device.str());
  return at::detail::createCPUGenerator(key);
}

}  // namespace

at::Tensor neftune_noise(const at::Tensor& embeddings, const std::vector<data::Segment>& segments,
                         const std::vector<uint64_t>& keys, double alpha) {
  TORCH_CHECK(embeddings.dim() == 3, "neftune_noise: embeddings must be (rows, length, d)");
  const int64_t R = embeddings.size(0), P = embeddings.size(1), d = embeddings.size(2);
  TORCH_CHECK(segments.size() == keys.size(), "neftune_noise: one key per sample");
  // The noise is drawn in fp32 and scaled there, straight into its slot of the result when that is
  // fp32; in bf16 each sample's fp32 draw is rounded once into its slot (no fp32 copy of the batch).
  at::Tensor noise = at::zeros({R, P, d}, embeddings.options());
  const bool fp32 = noise.scalar_type() == at::kFloat;
  for (size_t i = 0; i < segments.size(); ++i) {
    const data::Segment& s = segments[i];
    const int64_t li = s.length;
    TORCH_CHECK(li >= 0 && s.row >= 0 && s.row < R && s.start >= 0 && s.start + li <= P,
                "neftune_noise: sample out of range");
    if (li == 0) continue;
    // L_i * d in fp32: a bf16 count is exact only up to 256.
    const float scale = static_cast<float>(alpha) / std::sqrt(static_cast<float>(li) * static_cast<float>(d));
    at::Tensor slot = noise[s.row].narrow(0, s.start, li);  // contiguous: the same draws as a fresh (L_i, d)
    at::Tensor draw = fp32 ? slot : at::empty({li, d}, noise.options().dtype(at::kFloat));
    at::Generator gen = keyed_generator(keys[i], noise.device());
    draw.uniform_(-1.0, 1.0, gen).mul_(scale);
    if (!fp32) slot.copy_(draw);
  }
  return noise;
}

at::Tensor neftune_noise(const at::Tensor& embeddings, const std::vector<int64_t>& lengths,
                         const std::vector<uint64_t>& keys, double alpha) {
  TORCH_CHECK(embeddings.dim() == 3 && static_cast<int64_t>(lengths.size()) == embeddings.size(0),
              "neftune_noise: one length per row");
  std::vector<data::Segment> segments;
  segments.reserve(lengths.size());
  for (size_t i = 0; i < lengths.size(); ++i) segments.push_back({static_cast<int64_t>(i), 0, lengths[i]});
  return neftune_noise(embeddings, segments, keys, alpha);
}

at::Tensor add_neftune_noise(const at::Tensor& embeddings, const data::Batch& batch, uint64_t seed, int64_t step,
                             double alpha) {
  std::vector<uint64_t> keys;
  keys.reserve(batch.picks.size());
  for (const auto& p : batch.picks) keys.push_back(noise_key(seed, p.epoch, step, p.index));
  at::Tensor noise;
  {
    at::NoGradGuard no_grad;  // the noise is a constant: no gradient flows through it
    noise = neftune_noise(embeddings, batch.segments, keys, alpha);
  }
  return embeddings + noise;
}

}  // namespace neftune
