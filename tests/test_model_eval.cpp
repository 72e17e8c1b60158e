// `neftune eval`'s held-out loss (run::eval_loss): logits only at the targets, in chunks, padded or
// packed batches, against a reference computed another way (each sample alone through the full-logits
// forward, its targets picked out by hand); and a peak of live tensor bytes far under the full logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/counting_allocator.h"
#include "bench/random_llama.h"
#include "tests/test_util.h"
#include "trainer/infer/model_eval.h"
#include "trainer/model/llama.h"

namespace neftune {
namespace {

// Vocabularies far wider than the model, as in real models; the tokens stay below 256.
constexpr int64_t kVocab = 3001;
constexpr int32_t kPad = 258;

model::LlamaModel random_model(bool tied, at::ScalarType dtype, int64_t vocab = kVocab) {
  return bench::random_llama(test::small_llama(vocab, tied), 17, dtype, 0.2);
}

// Each sample alone, all its logits (fp32), the cross-entropy of every target position summed in
// double: no batching, padding, packing, row index or chunking shared with eval_loss.
double reference_loss(const model::LlamaModel& m, const std::vector<data::Example>& examples, int64_t* targets) {
  double sum = 0;
  *targets = 0;
  for (const data::Example& e : examples) {
    const std::vector<int64_t> ids(e.ids.begin(), e.ids.end());
    const at::Tensor logp = at::log_softmax(m.forward(at::tensor(ids).view({1, -1}))[0].to(at::kDouble), -1);
    for (size_t t = 1; t < ids.size(); ++t) {
      if (!e.train[t]) continue;
      sum -= logp[static_cast<int64_t>(t) - 1][ids[t]].item<double>();
      ++*targets;
    }
  }
  return sum / static_cast<double>(*targets);
}

const std::vector<int64_t> kLengths{40, 23, 31, 12, 57, 9, 33};

TEST(ModelEval, LabelOnlyChunkedLossEqualsEverySampleAloneWithAllItsLogits) {
  const std::vector<data::Example> ex = test::random_examples(99, kLengths);
  for (const bool tied : {false, true}) {
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      const model::LlamaModel m = random_model(tied, dtype);
      int64_t targets = 0;
      const double ref = reference_loss(m, ex, &targets);
      // fp32: the same sums over differently shaped matmuls and in another order (~1e-7 relative each).
      // bf16: each sample's activations are rounded to bf16 after sums made in batches of other shapes;
      // where such a sum lands on the other side of a rounding boundary the value moves by one bf16 ulp
      // (2^-8 relative), rare elements averaged over ~150 targets (this CPU build computes the rows alike:
      // observed 5e-7).
      const double tol = (dtype == at::kFloat ? 1e-5 : 2e-3) * ref;
      double worst = 0;
      for (const bool packing : {false, true}) {
        for (const int64_t chunk : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{512}}) {
          for (const int64_t batch : {int64_t{1}, int64_t{3}, int64_t{8}}) {
            run::EvalReport r;
            run::eval_loss(m, ex, kPad, {batch, packing, chunk}, r);
            SCOPED_TRACE("tied " + std::to_string(tied) + " " + std::string(at::toString(dtype)) + " packing " +
                         std::to_string(packing) + " chunk " + std::to_string(chunk) + " batch " +
                         std::to_string(batch));
            EXPECT_NEAR(r.loss, ref, tol);
            worst = std::max(worst, std::abs(r.loss - ref) / ref);
            EXPECT_EQ(r.target_tokens, targets);
            EXPECT_EQ(r.examples, static_cast<int64_t>(ex.size()));
          }
        }
      }
      std::printf("tied %d %s: loss %.6f, largest relative difference %.2e (bound %.0e)\n", tied, at::toString(dtype),
                  ref, worst, tol / ref);
    }
  }
}

TEST(ModelEval, PeakMemoryStaysFarUnderTheFullLogits) {
  constexpr int64_t kWideVocab = 32000;
  const model::LlamaModel m = random_model(false, at::kFloat, kWideVocab);
  const std::vector<data::Example> ex = test::random_examples(5, std::vector<int64_t>(8, 60));
  auto& counter = bench::CountingAllocator::install();
  auto peak = [&](bool packing, int64_t chunk) {
    const int64_t before = counter.current();
    counter.reset_peak();
    run::EvalReport r;
    run::eval_loss(m, ex, kPad, {8, packing, chunk}, r);
    return counter.peak() - before;
  };
  // All 8 x 60 positions' fp32 logits would be 8 x 60 x 32000 x 4 B = 61 MB, and their log-softmax as
  // much again. In chunks of 8 targets one chunk's logits are 1 MB (2 with the log-softmax); the rest of
  // the peak is a layer's activations, about 1 MB (the (8, 4, 60, 60) attention scores).
  const int64_t full_logits = int64_t{8} * 60 * 4 * kWideVocab;
  const int64_t padded8 = peak(false, 8), packed8 = peak(true, 8), padded_all = peak(false, 0);
  std::printf("peak live MB: chunk 8 padded %.2f packed %.2f, all targets at once %.2f; full logits %.2f\n",
              padded8 / 1e6, packed8 / 1e6, padded_all / 1e6, full_logits / 1e6);
  EXPECT_LT(padded8, full_logits / 10);
  EXPECT_LT(packed8, full_logits / 10);
  // With the head all at once: the logits and log-softmax of the 8 x 40 targets only, never the
  // prompts' (2 x 41 MB against 2 x 61 MB).
  EXPECT_LT(padded_all, int64_t{2} * 8 * 40 * 4 * kWideVocab + full_logits / 10);
}

}  // namespace
}  // namespace neftune
