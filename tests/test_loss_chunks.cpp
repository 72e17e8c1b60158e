// The LM head and loss in chunks of train.loss_chunk_tokens target positions against the run with all
// positions at once (chunk 0): the same loss sums (forward_backward and evaluate) and the same
// gradients of every unit, for chunks of 1, 3, 7 and N positions, fp32 and bf16, tied and untied heads;
// and, for the head stage alone, a peak of live tensor bytes that follows the chunk, not N.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench/counting_allocator.h"
#include "config/config.h"
#include "distributed/communicator.h"
#include "tests/test_util.h"
#include "trainer/model/chunked_head.h"
#include "trainer/model/sharded_llama.h"

namespace neftune {
namespace {

// A vocabulary larger than the model's width, as in real models; the tokens stay below 256.
constexpr int64_t kVocab = 2051;

struct Outcome {
  std::vector<double> losses;       // forward_backward's loss sum per micro-batch
  std::vector<double> eval_losses;  // evaluate's per micro-batch
  std::vector<at::Tensor> grads;    // every unit's flat gradient (fp32), accumulated over both
};

Outcome run(bool tied, at::ScalarType dtype, int64_t chunk) {
  auto comm = dist::make_local_communicator();
  dist::ShardingOptions so;
  so.compute_dtype = so.param_dtype = dtype;
  model::ShardedLlama m(test::small_llama(kVocab, tied), *comm, so, false);
  m.init_random(11);
  m.set_loss_chunk_tokens(chunk);
  const std::vector<data::Batch> batches = test::two_padded_micro_batches(4321);
  Outcome out;
  m.zero_grads();
  for (size_t i = 0; i < batches.size(); ++i)
    out.losses.push_back(m.forward_backward(batches[i], 0.01, i + 1 == batches.size(), {}).loss_sum.item<double>());
  for (auto* u : m.units()) out.grads.push_back(u->grads().to(at::kFloat).clone());
  for (const auto& b : batches) out.eval_losses.push_back(m.evaluate(b).loss_sum.item<double>());
  return out;
}

double max_rel_diff(const at::Tensor& a, const at::Tensor& ref) {
  return (a - ref).abs().max().item<double>() / std::max(ref.abs().max().item<double>(), 1e-30);
}

TEST(LossChunks, SameLossAndGradientsAsAllPositionsAtOnce) {
  const std::vector<data::Batch> batches = test::two_padded_micro_batches(4321);
  const int64_t n = batches[0].n_targets;
  ASSERT_GT(n, 7);  // chunks of 1, 3 and 7 really split the first micro-batch
  for (const bool tied : {false, true}) {
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      // fp32: only the order of the sums changes (the loss as a sum of chunk sums; each weight gradient
      // entry as a sum of per-chunk matmuls over <= 43 rows, whose reassociation moves it by up to
      // ~N ulps of the sum of its terms' magnitudes). Observed: <= 2.4e-7 relative on the losses,
      // <= 6e-6 of the largest entry on the gradients; a chunk lost or counted twice moves both by
      // >= 1/43 = 2e-2.
      // bf16: the logits are made in bf16 row by row (the same per row), the loss summed in fp32:
      // observed <= 1.6e-7. But each chunk's weight gradient is rounded to bf16 (2^-9 = 2e-3 relative)
      // before it is added to the others: observed <= 7.3e-3 of the largest entry, so 3e-2.
      const double loss_tol = 1e-6, grad_tol = dtype == at::kFloat ? 3e-5 : 3e-2;
      const Outcome ref = run(tied, dtype, 0);
      for (const int64_t chunk : {int64_t{1}, int64_t{3}, int64_t{7}, n}) {
        SCOPED_TRACE(std::string(tied ? "tied" : "untied") + ", " + c10::toString(dtype) + ", chunk " +
                     std::to_string(chunk));
        const Outcome got = run(tied, dtype, chunk);
        for (size_t i = 0; i < ref.losses.size(); ++i) {
          EXPECT_NEAR(got.losses[i], ref.losses[i], loss_tol * ref.losses[i]) << "micro-batch " << i;
          EXPECT_NEAR(got.eval_losses[i], ref.eval_losses[i], loss_tol * ref.eval_losses[i]) << "micro-batch " << i;
        }
        ASSERT_EQ(got.grads.size(), ref.grads.size());
        for (size_t u = 0; u < ref.grads.size(); ++u) {
          ASSERT_GT(ref.grads[u].abs().max().item<double>(), 0) << "unit " << u;
          EXPECT_LE(max_rel_diff(got.grads[u], ref.grads[u]), grad_tol) << "unit " << u;
        }
        // One chunk is the unchunked path itself: bit for bit.
        if (chunk == n) {
          EXPECT_EQ(got.losses[0], ref.losses[0]);
          EXPECT_EQ(got.eval_losses[0], ref.eval_losses[0]);
        }
      }
    }
  }
}

TEST(LossChunks, PeakMemoryFollowsTheChunk) {
  // The head stage alone on leaf tensors: 64 rows, a 4096-word vocabulary, d = 16.
  const int64_t n = 64, vocab = 4096, d = 16;
  config::ModelInit init;
  init.dim = d;
  init.n_heads = init.n_kv_heads = 1;
  const model::LlamaConfig mc = model::LlamaConfig::from_init(init, vocab, 1, 2);
  at::Generator gen = at::detail::createCPUGenerator(5);
  auto& counter = bench::CountingAllocator::install();
  auto peak = [&](int64_t chunk) {
    const at::Tensor x = at::randn({n, d}, gen).requires_grad_(true);
    const at::Tensor norm_w = at::ones({d}).requires_grad_(true);
    const at::Tensor head_w = (at::randn({vocab, d}, gen) * 0.02).requires_grad_(true);
    const at::Tensor rows = at::arange(n, at::kLong), ids = at::randint(0, vocab, {n}, gen, at::kLong);
    const int64_t before = counter.current();
    counter.reset_peak();
    model::chunked_head_loss(
        mc, [&] { return std::make_pair(norm_w, head_w); }, x, rows, ids, chunk, 1.0);
    return counter.peak() - before;
  };
  const int64_t all = peak(0), eighth = peak(8);
  // All at once: the (64, V) fp32 logits, their log-softmax and the two gradients, >= 4 x 64 x V x 4 B
  // = 4.2 MB, next to 0.5 MB of weight gradients. In chunks of 8 that part is 8x smaller: ~1 MB, under
  // a third (a graph kept alive across chunks would leave it at the full size).
  EXPECT_GE(all, 4 * n * vocab * 4);
  EXPECT_LT(eighth, all / 3);
}

TEST(LossChunks, ConfigKey) {
  EXPECT_EQ(config::parse_config("", "test").train.loss_chunk_tokens, 512);
  EXPECT_EQ(config::parse_config("", "test", {"train.loss_chunk_tokens=0"}).train.loss_chunk_tokens, 0);
  try {
    config::parse_config("", "test", {"train.loss_chunk_tokens=-1"});
    FAIL() << "a negative chunk was accepted";
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.loss_chunk_tokens"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace neftune
