// NEFTune noise: its distribution, its per-sample scale alpha/sqrt(L_i d), zero padding, detachment, and
// that a sample's noise depends only on (seed, epoch, step, sample index).
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/data/batch.h"
#include "trainer/neftune.h"

namespace neftune {
namespace {

// Relative standard deviation of ||u|| for u ~ U(-1,1)^n: Var(u^2) = 1/5 - 1/9 = 4/45, so
// sd(||u||^2)/E||u||^2 = 3 sqrt(4/(45 n)) and the norm's relative sd is half that.
double norm_rel_sd(int64_t n) { return 0.5 * 3.0 * std::sqrt(4.0 / (45.0 * static_cast<double>(n))); }

TEST(Neftune, PerSampleScaleBoundZeroPaddingAndNormAlphaOverSqrt3) {
  const double alpha = 5.0;
  for (const int64_t d : {16, 64, 256}) {
    const std::vector<int64_t> lengths = {50, 20, 7};
    const at::Tensor emb = at::zeros({3, 50, d});
    const at::Tensor noise = neftune_noise(emb, lengths, {11, 22, 33}, alpha);
    for (int64_t i = 0; i < 3; ++i) {
      const int64_t li = lengths[i];
      const at::Tensor real = noise[i].narrow(0, 0, li);
      const double bound = alpha / std::sqrt(static_cast<double>(li * d));
      // Per element: |delta| <= alpha / sqrt(L_i d) (fp32 rounding of the scale only).
      EXPECT_LE(real.abs().max().item<double>(), bound * (1 + 1e-6)) << "d=" << d << " i=" << i;
      // ||delta_i|| = alpha/sqrt(L_i d) * ||u|| ~ alpha/sqrt(3) whatever L_i and d (5 sd tolerance).
      const double norm = real.norm().item<double>();
      EXPECT_NEAR(norm, alpha / std::sqrt(3.0), 5 * norm_rel_sd(li * d) * alpha / std::sqrt(3.0))
          << "d=" << d << " i=" << i;
      // The padded-length formula (HF Trainer) would give alpha/sqrt(3) * sqrt(L_i / L): far outside for short samples.
      if (li < 25) {
        EXPECT_GT(norm, 1.5 * alpha / std::sqrt(3.0) * std::sqrt(li / 50.0));
      }
      // Mean 0: the mean of n uniforms has sd 1/sqrt(3n) (times the scale); 5 sd.
      EXPECT_LT(std::abs(real.mean().item<double>()), 5 * bound / std::sqrt(3.0 * li * d));
      // Padding gets exactly nothing.
      if (li < 50) {
        EXPECT_EQ(noise[i].narrow(0, li, 50 - li).abs().max().item<double>(), 0.0);
      }
    }
  }
}

TEST(Neftune, UniformInMinusOneOne) {
  // One long sample: rescale back to u and check the spread of U(-1,1): min/max near -1/1, var 1/3.
  const int64_t L = 100, d = 1000;
  const double alpha = 2.0;
  const at::Tensor noise = neftune_noise(at::zeros({1, L, d}), std::vector<int64_t>{L}, {5}, alpha);
  const at::Tensor u = noise / (alpha / std::sqrt(static_cast<double>(L * d)));
  EXPECT_GT(u.max().item<double>(), 0.999);
  EXPECT_LT(u.min().item<double>(), -0.999);
  EXPECT_NEAR(u.var().item<double>(), 1.0 / 3.0, 0.005);  // sd of the sample variance ~ 3e-4 at n = 1e5
}

TEST(Neftune, NoiseDependsOnlyOnTheSampleKeyNotOnBatching) {
  data::Example a, b;
  a.ids = std::vector<int32_t>(12, 5);
  a.set_prompt_length(3);
  b.ids = std::vector<int32_t>(30, 6);
  b.set_prompt_length(3);
  const std::vector<data::Example> ex = {a, b};
  const int64_t d = 8;
  // Sample 0 alone (no padding) vs next to a longer sample (padded to 30) at a different batch position.
  const data::Batch alone = data::collate(ex, {{0, 2}}, 0);
  const data::Batch mixed = data::collate(ex, {{1, 2}, {0, 2}}, 0);
  const at::Tensor n1 = add_neftune_noise(at::zeros({1, 12, d}), alone, 42, 7, 5.0);
  const at::Tensor n2 = add_neftune_noise(at::zeros({2, 30, d}), mixed, 42, 7, 5.0);
  EXPECT_TRUE(at::equal(n1[0], n2[1].narrow(0, 0, 12)));
  EXPECT_EQ(n2[1].narrow(0, 12, 18).abs().sum().item<double>(), 0.0);
  // Another step, epoch or seed draws different noise.
  EXPECT_FALSE(at::equal(n1, add_neftune_noise(at::zeros({1, 12, d}), alone, 42, 8, 5.0)));
  EXPECT_FALSE(at::equal(n1, add_neftune_noise(at::zeros({1, 12, d}), data::collate(ex, {{0, 3}}, 0), 42, 7, 5.0)));
  EXPECT_FALSE(at::equal(n1, add_neftune_noise(at::zeros({1, 12, d}), alone, 43, 7, 5.0)));
  EXPECT_NE(noise_key(1, 0, 0, 1), noise_key(1, 0, 1, 0));
}

TEST(Neftune, NoGradientFlowsThroughTheNoise) {
  data::Example a;
  a.ids = std::vector<int32_t>(10, 1);
  a.set_prompt_length(2);
  const data::Batch batch = data::collate({a}, {{0, 0}}, 0);
  const at::Tensor emb = at::randn({1, 10, 4}).requires_grad_(true);
  const at::Tensor out = add_neftune_noise(emb, batch, 1, 1, 5.0);
  (out * out).sum().backward();
  // d/d emb of sum((emb + delta)^2) is 2 (emb + delta) only if delta is a constant; a differentiable
  // delta(emb) would add terms. Compare with the analytic gradient.
  const at::Tensor delta = (out - emb).detach();
  EXPECT_TRUE(at::allclose(emb.grad(), 2 * (emb.detach() + delta), 1e-6, 1e-6));
  EXPECT_FALSE(delta.requires_grad());
}

TEST(Neftune, Bf16EmbeddingsGetBf16NoiseFromFp32Scale) {
  // L_i * d = 300 * 4096 is far past bf16's exact-integer range (256); the scale is computed in fp32.
  const at::Tensor emb = at::zeros({1, 300, 4096}, at::kBFloat16);
  const at::Tensor noise = neftune_noise(emb, std::vector<int64_t>{300}, {9}, 10.0);
  EXPECT_EQ(noise.scalar_type(), at::kBFloat16);
  EXPECT_NEAR(noise.to(at::kFloat).norm().item<double>(), 10.0 / std::sqrt(3.0), 0.05);
}

TEST(Neftune, EachSampleGetsItsKeyedFp32DrawScaledInFp32AndRoundedOnceToTheEmbeddingDtype) {
  // The reference draws each sample's (L_i, d) block alone from a generator seeded with its key, scales
  // it in fp32 and casts it: what a resumed or repacked run must reproduce bit for bit in every dtype.
  const int64_t d = 24;
  const std::vector<data::Segment> segments = {{0, 0, 9}, {0, 9, 5}, {1, 2, 13}};
  const std::vector<uint64_t> keys = {101, 202, 303};
  const double alpha = 5.0;
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kDouble}) {
    const at::Tensor noise = neftune_noise(at::zeros({2, 16, d}, dtype), segments, keys, alpha);
    ASSERT_EQ(noise.scalar_type(), dtype);
    at::Tensor expected = at::zeros({2, 16, d}, dtype);
    for (size_t i = 0; i < segments.size(); ++i) {
      const data::Segment& s = segments[i];
      at::Generator gen = at::detail::createCPUGenerator(keys[i]);
      const float scale =
          static_cast<float>(alpha) / std::sqrt(static_cast<float>(s.length * d));  // fp32, as documented
      expected[s.row].narrow(0, s.start, s.length).copy_(at::empty({s.length, d}).uniform_(-1.0, 1.0, gen) * scale);
    }
    EXPECT_TRUE(at::equal(noise, expected)) << dtype;
  }
}

}  // namespace
}  // namespace neftune
