// Packed micro-batches: whole samples end to end in rows, positions restarting per sample, attention
// within each sample only, NEFTune noise from each sample's own length and key, and 20 training steps
// that match padded batches (run at 1 rank and under mpirun at 2).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <random>

#include "distributed/world.h"
#include "tests/test_util.h"
#include "tests/train_trace.h"
#include "trainer/data/packing.h"
#include "trainer/model/llama.h"
#include "trainer/neftune.h"
#include "trainer/run/trainer.h"

namespace neftune {
namespace {

// Samples of uneven lengths (4..70 tokens), each with a prompt of a third of it (no loss there).
std::vector<data::Example> uneven_examples(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<data::Example> ex(static_cast<size_t>(n));
  for (auto& e : ex) {
    const int len = 4 + static_cast<int>(rng() % 67);
    for (int t = 0; t < len; ++t) e.ids.push_back(3 + static_cast<int32_t>(rng() % 250));
    e.train.assign(e.ids.size(), 0);
    e.set_prompt_length(len / 3 + 1);
  }
  return ex;
}

std::vector<data::SamplePick> picks_of(int n, int64_t epoch) {
  std::vector<data::SamplePick> p;
  for (int i = n - 1; i >= 0; --i) p.push_back({i, epoch});  // not in index order
  return p;
}

TEST(Packing, SamplesLieWholeInRowsWithPositionsRestartingAndTheirOwnTargets) {
  const auto ex = uneven_examples(12, 1);
  const auto picks = picks_of(12, 2);
  const data::Batch padded = data::collate(ex, picks, 0);
  const data::Batch packed = data::pack(ex, picks, 0, 100);
  ASSERT_TRUE(packed.packed());
  EXPECT_FALSE(padded.packed());
  const int64_t R = packed.input_ids.size(0), P = packed.input_ids.size(1);
  EXPECT_LE(P, 100);
  EXPECT_GT(R, 1);
  EXPECT_LT(R * P, padded.input_ids.numel());  // less padding than padding to the longest
  EXPECT_EQ(packed.lengths, padded.lengths);
  EXPECT_EQ(packed.n_tokens, padded.n_tokens);
  EXPECT_EQ(packed.n_targets, padded.n_targets);
  ASSERT_EQ(packed.segments.size(), picks.size());
  // Every column holds at most one sample; a sample's ids, positions and targets are its own.
  std::vector<std::vector<int>> owner(static_cast<size_t>(R), std::vector<int>(static_cast<size_t>(P), -1));
  auto ids = packed.input_ids.accessor<int64_t, 2>();
  auto pos = packed.positions.accessor<int64_t, 2>();
  auto tgt = packed.targets.accessor<int64_t, 2>();
  auto ptgt = padded.targets.accessor<int64_t, 2>();
  for (size_t i = 0; i < picks.size(); ++i) {
    const data::Segment& s = packed.segments[i];
    const data::Example& e = ex[static_cast<size_t>(picks[i].index)];
    ASSERT_EQ(s.length, static_cast<int64_t>(e.ids.size()));
    ASSERT_LE(s.start + s.length, P);
    for (int64_t t = 0; t < s.length; ++t) {
      EXPECT_EQ(owner[s.row][s.start + t], -1) << "sample " << i << " overlaps another";
      owner[s.row][s.start + t] = static_cast<int>(i);
      EXPECT_EQ(ids[s.row][s.start + t], e.ids[t]);
      EXPECT_EQ(pos[s.row][s.start + t], t);
      EXPECT_EQ(tgt[s.row][s.start + t], ptgt[static_cast<int64_t>(i)][t]) << "sample " << i << " position " << t;
    }
    // The last token predicts nothing: the next column is another sample's first token, or padding.
    EXPECT_EQ(tgt[s.row][s.start + s.length - 1], -100);
  }
  // The target index lists exactly the targets, in flat order.
  at::Tensor sorted_packed = std::get<0>(packed.target_ids.sort()),
             sorted_padded = std::get<0>(padded.target_ids.sort());
  EXPECT_TRUE(at::equal(sorted_packed, sorted_padded));
  EXPECT_TRUE(at::equal(packed.targets.reshape({-1}).index_select(0, packed.target_rows), packed.target_ids));
  // A sample longer than a row is refused, never split.
  EXPECT_THROW(data::pack(ex, picks, 0, 20), c10::Error);
}

TEST(Packing, EachSampleGetsTheNoiseOfItsOwnLengthAndKeyNotThePackedLengths) {
  const auto ex = uneven_examples(10, 2);
  const auto picks = picks_of(10, 1);
  const int64_t d = 32;
  const double alpha = 5.0;
  const data::Batch padded = data::collate(ex, picks, 0);
  const data::Batch packed = data::pack(ex, picks, 0, 140);
  const at::Tensor n_pad =
      add_neftune_noise(at::zeros({padded.input_ids.size(0), padded.input_ids.size(1), d}), padded, 7, 3, alpha);
  const at::Tensor n_pack =
      add_neftune_noise(at::zeros({packed.input_ids.size(0), packed.input_ids.size(1), d}), packed, 7, 3, alpha);
  const int64_t P = packed.input_ids.size(1);
  at::Tensor covered = at::zeros({packed.input_ids.size(0), P}, at::kBool);
  int short_samples = 0;
  for (size_t i = 0; i < picks.size(); ++i) {
    const data::Segment& s = packed.segments[i];
    const at::Tensor mine = n_pack[s.row].narrow(0, s.start, s.length);
    // Bit for bit the noise the sample gets alone in a padded row: the same generator, the same scale.
    EXPECT_TRUE(at::equal(mine, n_pad[static_cast<int64_t>(i)].narrow(0, 0, s.length))) << "sample " << i;
    // Its scale is alpha / sqrt(L_i d): |delta| reaches near that bound and never passes it.
    const double own = alpha / std::sqrt(static_cast<double>(s.length * d));
    const double top = mine.abs().max().item<double>();
    EXPECT_LE(top, own * (1 + 1e-6));
    EXPECT_GT(top, 0.9 * own);  // max of L_i * d >= 128 uniforms: below 0.9 with probability 0.9^128
    // The packed-length formula (alpha / sqrt(P d), what HF's packing does) bounds |delta| far lower
    // for a short sample: this noise cannot come from it.
    if (s.length * 4 < P) {
      ++short_samples;
      EXPECT_GT(top, 1.5 * alpha / std::sqrt(static_cast<double>(P * d))) << "sample " << i;
    }
    covered[s.row].narrow(0, s.start, s.length).fill_(true);
  }
  EXPECT_GT(short_samples, 0) << "the fixture should hold samples under a quarter of the row";
  // The row's tail gets nothing.
  EXPECT_EQ(n_pack.abs().sum(-1).masked_select(covered.logical_not()).sum().item<double>(), 0.0);
}

// Attention of packed rows against a reference built another way: a dense (P, P) mask from each
// column's sample id, softmax in double.
at::Tensor dense_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const std::vector<data::Segment>& segs, int64_t window) {
  const int64_t R = q.size(0), P = q.size(2);
  at::Tensor sample = at::full({R, P}, -1, at::kLong), pos = at::zeros({R, P}, at::kLong);
  for (size_t i = 0; i < segs.size(); ++i) {
    for (int64_t t = 0; t < segs[i].length; ++t) {
      sample[segs[i].row][segs[i].start + t] = static_cast<int64_t>(i);
      pos[segs[i].row][segs[i].start + t] = t;
    }
  }
  at::Tensor allowed = at::zeros({R, 1, P, P}, at::kBool);
  auto a = allowed.accessor<bool, 4>();
  auto sa = sample.accessor<int64_t, 2>();
  auto pa = pos.accessor<int64_t, 2>();
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t i = 0; i < P; ++i) {
      for (int64_t j = 0; j < P; ++j) {
        a[r][0][i][j] = sa[r][i] >= 0 && sa[r][i] == sa[r][j] && pa[r][j] <= pa[r][i] &&
                        (window == 0 || pa[r][i] - pa[r][j] < window);
      }
    }
  }
  const at::Tensor qd = q.to(at::kDouble), kd = k.to(at::kDouble), vd = v.to(at::kDouble);
  at::Tensor scores = at::matmul(qd, kd.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  at::Tensor probs = at::softmax(scores, -1).nan_to_num(0.0);  // tail rows see nothing: 0
  return at::matmul(probs, vd);
}

TEST(PackedAttention, EachSampleSeesOnlyItselfCausallyAndWithinItsWindow) {
  at::manual_seed(3);
  const std::vector<data::Segment> segs = {{0, 0, 7}, {0, 7, 1}, {0, 8, 9}, {1, 0, 12}, {1, 12, 3}};  // tails 3, 2
  const at::Tensor q = at::randn({2, 3, 17, 8}), k = at::randn({2, 3, 17, 8}), v = at::randn({2, 3, 17, 8});
  for (const int64_t window : {0, 4}) {
    const at::Tensor got = model::packed_attention(q, k, v, segs, window);
    const at::Tensor want = dense_reference(q, k, v, segs, window);
    // fp32 softmax and matmul over at most 12 keys against double: observed ~1e-7.
    EXPECT_LT((got.to(at::kDouble) - want).abs().max().item<double>(), 2e-6) << "window " << window;
  }
}

model::LlamaConfig tiny_llama(model::ModelType type, std::optional<int64_t> window) {
  model::LlamaConfig c;
  c.model_type = type;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 64;
  c.max_position_embeddings = 256;
  c.sliding_window = window;
  return c;
}

TEST(PackedLayer, EverySampleGetsTheOutputItGetsAloneInAPaddedRow) {
  at::manual_seed(4);
  const std::vector<int64_t> lengths = {13, 2, 30, 9, 21};
  const std::vector<data::Segment> segs = {{0, 0, 13}, {0, 13, 2}, {1, 0, 30}, {2, 0, 9}, {2, 9, 21}};
  for (const auto& [type, window] :
       std::vector<std::pair<model::ModelType, std::optional<int64_t>>>{{model::ModelType::llama, std::nullopt},
                                                                        {model::ModelType::qwen2, std::nullopt},
                                                                        {model::ModelType::qwen3, std::nullopt},
                                                                        {model::ModelType::mistral, 5}}) {
    const model::LlamaConfig c = tiny_llama(type, window);
    std::vector<at::Tensor> t;
    for (const auto& p : model::layer_params(c))
      t.push_back(at::randn(p.shape) * (p.shape.size() == 1 ? 0.1 : 0.3) + (p.shape.size() == 1 ? 1.0 : 0.0));
    const model::LayerWeights w = model::LayerWeights::from(c, t);
    model::Rope rope(c, at::kCPU);
    rope.reserve(30);
    const at::Tensor padded_x = at::randn({5, 30, 32});
    at::Tensor packed_x = at::zeros({3, 30, 32}), positions = at::zeros({3, 30}, at::kLong);
    for (size_t i = 0; i < segs.size(); ++i) {
      packed_x[segs[i].row]
          .narrow(0, segs[i].start, lengths[i])
          .copy_(padded_x[static_cast<int64_t>(i)].narrow(0, 0, lengths[i]));
      positions[segs[i].row].narrow(0, segs[i].start, lengths[i]).copy_(at::arange(lengths[i], at::kLong));
    }
    const at::Tensor padded_y = model::decoder_layer(c, w, padded_x, rope, 0);
    const at::Tensor packed_y = model::decoder_layer(c, w, packed_x, rope, model::PackedRows{positions, &segs});
    for (size_t i = 0; i < segs.size(); ++i) {
      const at::Tensor a = packed_y[segs[i].row].narrow(0, segs[i].start, lengths[i]);
      const at::Tensor b = padded_y[static_cast<int64_t>(i)].narrow(0, 0, lengths[i]);
      // fp32, only the grouping of sums differs (shapes of the matmuls, keys beyond a sample): observed
      // ~1e-6 of activations of size ~5.
      EXPECT_LT((a - b).abs().max().item<double>(), 1e-5 * (1 + b.abs().max().item<double>()))
          << model::model_type_name(type) << " sample " << i;
    }
  }
}

// ---- training ----

test::TrainTrace train_20(const config::TrainConfig& cfg) {
  run::Trainer t(cfg, dist::world());
  // The samples must differ in length, or packing would only lay equal rows end to end.
  int64_t shortest = 1 << 30, longest = 0;
  for (const auto& e : t.datasets().train) {
    shortest = std::min<int64_t>(shortest, static_cast<int64_t>(e.ids.size()));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(e.ids.size()));
  }
  EXPECT_LT(shortest + 64, longest);
  return test::trace_steps(t, 20);
}

TEST(PackedTraining, TwentyStepsMatchPaddedBatchesWithAccumulationAndNeftune) {
  const int N = dist::world().size;
  test::TempDir dir;
  const std::vector<std::string> common = {
      "train.micro_batch_size=4", "train.accumulation_steps=2", "train.max_steps=20",  "train.max_grad_norm=1.0",
      "neftune.alpha=5",          "data.builtin_eval_size=8",   "data.max_seq_len=400"};
  auto with = [&](const std::string& out, std::vector<std::string> extra) {
    extra.insert(extra.begin(), common.begin(), common.end());
    return test::small_train_config(dir / out, extra);
  };
  const test::TrainTrace ref = train_20(with("padded", {}));
  // One row per micro-batch, and rows of 400 (several per micro-batch).
  for (const std::string len : {"0", "400"}) {
    SCOPED_TRACE("pack_length " + len);
    const test::TrainTrace got = train_20(with("packed" + len, {"data.packing=true", "data.pack_length=" + len}));
    // fp32; packing changes only the grouping of sums (matmul shapes, softmax over a sample's keys
    // instead of a padded row's). Bounds as in the FSDP equivalence test: Adam can move a weight whose
    // gradient is ~0 by up to lr per step on a rounding-level difference, so weights are compared by
    // the difference relative to how far training moved them. A wrong position, mask, target or noise
    // scale moves the loss far more (attention across samples: 7e-4 to 5e-3 relative, weights 1e-1).
    const test::TraceDiff diff = test::compare_traces(got, ref, 1e-6, 1e-5);
    std::printf("[ packed   ] N=%d pack_length %s: max rel loss diff %.2e, |dw|/|w - w0| %.2e, max |dw| %.2e\n", N,
                len.c_str(), diff.worst_loss, diff.rel_weights, diff.worst_weight);
    EXPECT_LT(diff.rel_weights, 1e-4);
    EXPECT_LT(diff.worst_weight, 1e-4);
  }
}

TEST(PackedTraining, EvalLossEqualsThePaddedEval) {
  test::TempDir dir;
  const std::vector<std::string> common = {"train.max_steps=1", "data.builtin_eval_size=24", "data.max_seq_len=400",
                                           "train.micro_batch_size=8"};
  auto eval_with = [&](const std::string& out, std::vector<std::string> extra) {
    extra.insert(extra.begin(), common.begin(), common.end());
    run::Trainer t(test::small_train_config(dir / out, extra), dist::world());
    return t.evaluate();
  };
  const double padded = eval_with("a", {});
  const double packed = eval_with("b", {"data.packing=true"});
  EXPECT_NEAR(packed, padded, 1e-6 * padded);  // fp32 grouping of sums only
}

}  // namespace
}  // namespace neftune
