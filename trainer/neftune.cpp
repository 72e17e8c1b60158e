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

// U(-1, 1) of shape (n, d) from a generator seeded with `key`, on `device`.
at::Tensor uniform_pm1(int64_t n, int64_t d, uint64_t key, const at::Device& device) {
#ifdef NEFTUNE_TORCH_CUDA
  if (device.is_cuda()) {
    at::Generator gen = at::cuda::detail::createCUDAGenerator(device.index());
    gen.set_current_seed(key);
    return at::empty({n, d}, at::TensorOptions().dtype(at::kFloat).device(device)).uniform_(-1.0, 1.0, gen);
  }
#endif
  at::Generator gen = at::detail::createCPUGenerator(key);
  return at::empty({n, d}, at::kFloat).uniform_(-1.0, 1.0, gen).to(device);
}

}  // namespace

at::Tensor neftune_noise(const at::Tensor& embeddings, const std::vector<int64_t>& lengths,
                         const std::vector<uint64_t>& keys, double alpha) {
  TORCH_CHECK(embeddings.dim() == 3, "neftune_noise: embeddings must be (B, L, d)");
  const int64_t B = embeddings.size(0), L = embeddings.size(1), d = embeddings.size(2);
  TORCH_CHECK(static_cast<int64_t>(lengths.size()) == B && static_cast<int64_t>(keys.size()) == B,
              "neftune_noise: one length and one key per sample");
  at::Tensor noise = at::zeros({B, L, d}, embeddings.options().dtype(at::kFloat));
  for (int64_t i = 0; i < B; ++i) {
    const int64_t li = lengths[i];
    TORCH_CHECK(li >= 0 && li <= L, "neftune_noise: sample length out of range");
    if (li == 0) continue;
    // L_i * d in fp32: a bf16 count is exact only up to 256.
    const float scale = static_cast<float>(alpha) / std::sqrt(static_cast<float>(li) * static_cast<float>(d));
    noise[i].narrow(0, 0, li).copy_(uniform_pm1(li, d, keys[i], embeddings.device()).mul_(scale));
  }
  return noise.to(embeddings.scalar_type());
}

at::Tensor add_neftune_noise(const at::Tensor& embeddings, const data::Batch& batch, uint64_t seed, int64_t step,
                             double alpha) {
  std::vector<uint64_t> keys;
  keys.reserve(batch.picks.size());
  for (const auto& p : batch.picks) keys.push_back(noise_key(seed, p.epoch, step, p.index));
  at::Tensor noise;
  {
    at::NoGradGuard no_grad;  // the noise is a constant: no gradient flows through it
    noise = neftune_noise(embeddings, batch.lengths, keys, alpha);
  }
  return embeddings + noise;
}

}  // namespace neftune
