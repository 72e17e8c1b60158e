// The architectures beyond LLaMA-1/2 (Llama 3.1 RoPE scaling, Qwen2 q/k/v biases, Qwen3 q/k norms and
// head_dim, Mistral's sliding window, attention_bias) against references computed another way:
//   - the fixtures' float64 logits (../shared/fixtures/modern: a numpy forward from HF's modeling code);
//   - a float64 forward written here position by position (explicit loops over queries, heads and the
//     keys inside each window), whose gradients come from autograd, for random models of each switch;
//   - a closed form of HF's llama3 frequency scaling;
//   - a 1-rank run against an N-rank run (under mpirun: ModernDist) and an uninterrupted run against a
//     saved and resumed one.
// Round trips (train, export, reload, generate) keep config.json's fields, and what would be computed
// differently from HF is refused naming the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "config/config.h"
#include "distributed/communicator.h"
#include "distributed/world.h"
#include "tests/test_util.h"
#include "trainer/data/batch.h"
#include "trainer/infer/generate.h"
#include "trainer/io/safetensors.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/model/sharded_llama.h"
#include "trainer/run/checkpoint_export.h"
#include "trainer/run/trainer.h"

namespace neftune {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using Weights = std::map<std::string, at::Tensor>;

const char* const kFamilies[] = {"llama3", "qwen2", "qwen3"};

// The fixtures' stated bound for an fp32 implementation (README): max |logit - ref| <= 2e-4 max(1, max |ref|).
double fixture_tolerance(const at::Tensor& ref) { return 2e-4 * std::max(1.0, ref.abs().max().item<double>()); }

at::Tensor to_tensor(const json& rows) {
  std::vector<double> flat;
  int64_t r = 0, c = 0;
  for (const auto& row : rows) {
    c = static_cast<int64_t>(row.size());
    for (const auto& v : row) flat.push_back(v.get<double>());
    ++r;
  }
  return at::tensor(flat, at::kDouble).view({r, c});
}

// ---- a float64 forward written from HF's modeling code, one query position at a time ----

// The test's own description of a model (not model::LlamaConfig): dims and the family switches.
struct Arch {
  int64_t d = 0, f = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  double eps = 1e-6, theta = 10000.0, linear_factor = 1.0;
  bool qkv_bias = false, o_bias = false, qk_norm = false, tied = false;
  int64_t window = 0;  // a query at p attends keys p - window < j <= p; 0 = all j <= p
};

at::Tensor ref_rms(const at::Tensor& x, const at::Tensor& w, double eps) {
  return x / (x.pow(2).mean(-1, true) + eps).sqrt() * w;
}

// (L) ids -> (L, V) float64 logits; differentiable in the weights.
at::Tensor ref_logits(const Arch& a, const Weights& w, const std::vector<int64_t>& ids) {
  const int64_t L = static_cast<int64_t>(ids.size()), half = a.head_dim / 2, group = a.heads / a.kv_heads;
  auto W = [&](const std::string& name) { return w.at(name); };
  // RoPE on the pairs (j, j + head_dim/2): angle p * theta^(-2j/head_dim) / linear_factor.
  auto rotate = [&](const at::Tensor& v, int64_t p) {  // (..., head_dim)
    std::vector<double> c(half), s(half);
    for (int64_t j = 0; j < half; ++j) {
      const double angle = static_cast<double>(p) * std::pow(a.theta, -2.0 * j / a.head_dim) / a.linear_factor;
      c[j] = std::cos(angle);
      s[j] = std::sin(angle);
    }
    const at::Tensor cs = at::tensor(c, at::kDouble), sn = at::tensor(s, at::kDouble);
    const at::Tensor x1 = v.narrow(-1, 0, half), x2 = v.narrow(-1, half, half);
    return at::cat({x1 * cs - x2 * sn, x2 * cs + x1 * sn}, -1);
  };
  at::Tensor x = W("model.embed_tokens.weight").index_select(0, at::tensor(ids, at::kLong));  // (L, d)
  for (int64_t l = 0; l < a.layers; ++l) {
    const std::string P = "model.layers." + std::to_string(l) + ".";
    const at::Tensor h = ref_rms(x, W(P + "input_layernorm.weight"), a.eps);
    auto proj = [&](const std::string& name, bool bias) {
      at::Tensor y = at::matmul(h, W(P + name + ".weight").t());
      return bias ? y + W(P + name + ".bias") : y;
    };
    at::Tensor q = proj("self_attn.q_proj", a.qkv_bias).view({L, a.heads, a.head_dim});
    at::Tensor k = proj("self_attn.k_proj", a.qkv_bias).view({L, a.kv_heads, a.head_dim});
    const at::Tensor v = proj("self_attn.v_proj", a.qkv_bias).view({L, a.kv_heads, a.head_dim});
    if (a.qk_norm) {
      q = ref_rms(q, W(P + "self_attn.q_norm.weight"), a.eps);
      k = ref_rms(k, W(P + "self_attn.k_norm.weight"), a.eps);
    }
    std::vector<at::Tensor> k_rot;
    k_rot.reserve(static_cast<size_t>(L));
    for (int64_t j = 0; j < L; ++j) k_rot.push_back(rotate(k[j], j));
    const at::Tensor kr = at::stack(k_rot);  // (L, KV, hd)
    std::vector<at::Tensor> rows;
    for (int64_t i = 0; i < L; ++i) {
      const at::Tensor qi = rotate(q[i], i);  // (H, hd)
      const int64_t lo = a.window > 0 ? std::max<int64_t>(0, i - a.window + 1) : 0, n = i - lo + 1;
      std::vector<at::Tensor> out;
      for (int64_t hh = 0; hh < a.heads; ++hh) {
        const at::Tensor keys = kr.narrow(0, lo, n).select(1, hh / group);  // (n, hd)
        const at::Tensor vals = v.narrow(0, lo, n).select(1, hh / group);
        const at::Tensor p = at::softmax(at::matmul(keys, qi[hh]) / std::sqrt(static_cast<double>(a.head_dim)), 0);
        out.push_back(at::matmul(p, vals));  // (hd)
      }
      rows.push_back(at::cat(out));
    }
    at::Tensor o = at::matmul(at::stack(rows), W(P + "self_attn.o_proj.weight").t());
    if (a.o_bias) o = o + W(P + "self_attn.o_proj.bias");
    x = x + o;
    const at::Tensor m = ref_rms(x, W(P + "post_attention_layernorm.weight"), a.eps);
    const at::Tensor gate = at::matmul(m, W(P + "mlp.gate_proj.weight").t());
    x = x + at::matmul(gate * at::sigmoid(gate) * at::matmul(m, W(P + "mlp.up_proj.weight").t()),
                       W(P + "mlp.down_proj.weight").t());
  }
  const at::Tensor head = a.tied ? W("model.embed_tokens.weight") : W("lm_head.weight");
  return at::matmul(ref_rms(x, W("model.norm.weight"), a.eps), head.t());
}

// Sum over positions 0..L-2 of -log p(ids[i+1]): the loss of a sample whose prompt is its first token.
at::Tensor ref_loss_sum(const at::Tensor& logits, const std::vector<int64_t>& ids) {
  const int64_t L = static_cast<int64_t>(ids.size());
  const at::Tensor next = at::tensor(std::vector<int64_t>(ids.begin() + 1, ids.end()), at::kLong).view({-1, 1});
  return -at::log_softmax(logits.narrow(0, 0, L - 1), -1).gather(1, next).sum();
}

std::vector<int64_t> some_ids(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    ids.push_back(static_cast<int64_t>((seed >> 33) % static_cast<uint64_t>(vocab)));
  }
  return ids;
}

// ---- random models of each switch, written as HF directories ----

struct RandomModel {
  std::string name;
  json config;  // config.json as the test writes it
  Arch arch;
};

std::vector<RandomModel> random_models() {
  const json common = {{"hidden_size", 32},
                       {"intermediate_size", 64},
                       {"num_hidden_layers", 2},
                       {"num_attention_heads", 4},
                       {"num_key_value_heads", 2},
                       {"vocab_size", 50},
                       {"max_position_embeddings", 64},
                       {"rms_norm_eps", 1e-6},
                       {"rope_theta", 10000.0},
                       {"hidden_act", "silu"},
                       {"bos_token_id", 1},
                       {"eos_token_id", 2},
                       {"torch_dtype", "float32"}};
  Arch base;
  base.d = 32, base.f = 64, base.layers = 2, base.heads = 4, base.kv_heads = 2, base.head_dim = 8, base.vocab = 50;
  std::vector<RandomModel> out;
  {  // Mistral: a window of 5 over 24 positions; head_dim 16 with hidden 32 / 4 heads (q width 64).
    RandomModel m{"mistral", common, base};
    m.config.update({{"model_type", "mistral"},
                     {"architectures", {"MistralForCausalLM"}},
                     {"head_dim", 16},
                     {"sliding_window", 5},
                     {"tie_word_embeddings", false}});
    m.arch.head_dim = 16, m.arch.window = 5;
    out.push_back(m);
  }
  {  // Llama with attention_bias (q/k/v/o biases) and linear RoPE scaling, tied head.
    RandomModel m{"llama_bias_linear", common, base};
    m.config.update({{"model_type", "llama"},
                     {"architectures", {"LlamaForCausalLM"}},
                     {"attention_bias", true},
                     {"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}},
                     {"tie_word_embeddings", true}});
    m.arch.qkv_bias = m.arch.o_bias = m.arch.tied = true, m.arch.linear_factor = 2.0;
    out.push_back(m);
  }
  {  // Qwen3 with attention_bias; its unused sliding_window (use_sliding_window false) must change nothing.
    RandomModel m{"qwen3_bias", common, base};
    m.config.update({{"model_type", "qwen3"},
                     {"architectures", {"Qwen3ForCausalLM"}},
                     {"head_dim", 16},
                     {"attention_bias", true},
                     {"use_sliding_window", false},
                     {"sliding_window", 4},
                     {"tie_word_embeddings", false}});
    m.arch.head_dim = 16, m.arch.qkv_bias = m.arch.o_bias = m.arch.qk_norm = true;
    out.push_back(m);
  }
  return out;
}

// Weights large enough that attention is far from uniform (so a wrong mask shows), in float64.
Weights random_weights(const model::LlamaConfig& c, uint64_t seed) {
  at::manual_seed(seed);
  Weights w;
  for (const auto& p : model::all_params(c)) {
    const bool bias = p.name.size() > 5 && p.name.compare(p.name.size() - 5, 5, ".bias") == 0;
    at::Tensor t = at::randn(p.shape, at::kDouble);
    if (p.shape.size() == 2) {
      t = t * (p.name == model::kEmbedName ? 1.0 : 1.5 / std::sqrt(double(p.shape[1])));
    } else {
      t = bias ? t * 0.5 : 1.0 + 0.2 * t;
    }
    w[p.name] = t;
  }
  return w;
}

// Writes the model (fp32 weights) with the test's own config.json; returns the float64 weights.
Weights write_random_model(const RandomModel& m, const std::string& dir) {
  const model::LlamaConfig c = model::LlamaConfig::from_json_text(m.config.dump(), m.name);
  const Weights w = random_weights(c, 1234);
  model::write_hf_model(dir, c, [&](const std::string& n) { return w.at(n).to(at::kFloat); }, {});
  test::write_file(dir + "/config.json", m.config.dump(2));
  // The fp32 values the model holds, back in float64: the reference sees exactly the same weights.
  Weights w32;
  for (const auto& [n, t] : w) w32[n] = t.to(at::kFloat).to(at::kDouble);
  return w32;
}

// ---- 1. the fixtures ----

TEST(ModernFixture, LogitsMatchTheFloat64Reference) {
  for (const char* family : kFamilies) {
    NEFTUNE_REQUIRE_FIXTURE(dir, std::string("modern/") + family);
    const json ref = test::read_json(dir + "/reference.json");
    const auto m = model::LlamaModel::load(dir, at::kFloat);
    double worst = 0, worst_ratio = 0;
    ASSERT_GE(ref["cases"].size(), 3u);
    for (const auto& c : ref["cases"]) {
      const auto ids = c["input_ids"].get<std::vector<int64_t>>();
      const at::Tensor want = to_tensor(c["logits"]);
      const at::Tensor got = m.forward(at::tensor(ids, at::kLong).view({1, -1}))[0].to(at::kDouble);
      const double err = (got - want).abs().max().item<double>(), tol = fixture_tolerance(want);
      EXPECT_LE(err, tol) << family << ", " << ids.size() << " tokens";
      worst = std::max(worst, err);
      worst_ratio = std::max(worst_ratio, err / tol);
    }
    std::printf("[ fixture  ] %-7s max |logit - ref| %.3e (%.3f of the tolerance)\n", family, worst, worst_ratio);
  }
}

TEST(ModernFixture, CachedDecodeEqualsTheFullForward) {
  for (const char* family : kFamilies) {
    NEFTUNE_REQUIRE_FIXTURE(dir, std::string("modern/") + family);
    const json ref = test::read_json(dir + "/reference.json");
    const auto m = model::LlamaModel::load(dir, at::kFloat);
    const auto ids = ref["cases"][1]["input_ids"].get<std::vector<int64_t>>();
    const at::Tensor all = at::tensor(ids, at::kLong).view({1, -1});
    const at::Tensor full = m.forward(all);
    model::KvCache cache = m.new_cache(1, all.size(1));
    std::vector<at::Tensor> parts{m.forward(all.narrow(1, 0, 7), &cache)};
    for (int64_t p = 7; p < all.size(1); ++p) parts.push_back(m.forward(all.narrow(1, p, 1), &cache));
    // fp32, the same ops grouped differently: agreement to float rounding.
    EXPECT_LT((at::cat(parts, 1) - full).abs().max().item<double>(), 1e-4) << family;
  }
}

// The forward written in this file reproduces the fixtures (so it can judge the random models below).
TEST(ModernFixture, TheTestsOwnForwardReproducesTheFixtures) {
  for (const char* family : {"qwen2", "qwen3"}) {
    NEFTUNE_REQUIRE_FIXTURE(dir, std::string("modern/") + family);
    const json cfg = test::read_json(dir + "/config.json"), ref = test::read_json(dir + "/reference.json");
    Arch a;
    a.d = cfg["hidden_size"].get<int64_t>();
    a.f = cfg["intermediate_size"].get<int64_t>();
    a.layers = cfg["num_hidden_layers"].get<int64_t>();
    a.heads = cfg["num_attention_heads"].get<int64_t>();
    a.kv_heads = cfg["num_key_value_heads"].get<int64_t>();
    a.vocab = cfg["vocab_size"].get<int64_t>();
    a.head_dim = cfg.value("head_dim", a.d / a.heads);
    a.eps = cfg["rms_norm_eps"].get<double>();
    a.theta = cfg["rope_theta"].get<double>();
    a.tied = cfg["tie_word_embeddings"].get<bool>();
    a.qkv_bias = std::string(family) == "qwen2";  // Qwen2: q/k/v biases; Qwen3: q/k norms
    a.qk_norm = !a.qkv_bias;
    const model::HfCheckpoint ck(dir);
    Weights w;
    for (const auto& p : model::all_params(ck.config())) w[p.name] = ck.load(p.name).to(at::kDouble);
    const auto& c = ref["cases"][1];
    const at::Tensor want = to_tensor(c["logits"]);
    // float64 against float64: the stored logits are rounded to 7 decimals (observed 5.0e-8); summation
    // order adds ~1e-13. A wrong mask, norm or bias moves them by >= 1e-3.
    EXPECT_LT((ref_logits(a, w, c["input_ids"].get<std::vector<int64_t>>()) - want).abs().max().item<double>(), 1e-7)
        << family;
  }
}

// HF's _compute_llama3_parameters in closed form, band by band, in float64.
TEST(ModernFixture, Llama3FrequencyScalingIsHfs) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/llama3");
  const model::LlamaConfig c = model::HfCheckpoint(dir).config();
  ASSERT_EQ(c.rope_scaling.type, model::RopeScaling::Type::llama3);
  const auto& s = c.rope_scaling;
  const at::Tensor got = model::rope_inv_freq(c).to(at::kDouble);
  int bands[3] = {0, 0, 0};
  for (int64_t j = 0; j < c.head_dim / 2; ++j) {
    const double f = std::pow(c.rope_theta, -2.0 * j / c.head_dim), wavelen = 2 * M_PI / f;
    const double old_len = static_cast<double>(s.original_max_position_embeddings);
    double want = f;
    if (wavelen > old_len / s.low_freq_factor) {
      want = f / s.factor, ++bands[0];
    } else if (wavelen >= old_len / s.high_freq_factor) {
      const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      want = (1 - smooth) * f / s.factor + smooth * f, ++bands[1];
    } else {
      ++bands[2];
    }
    // fp32 arithmetic on values near 1e-3..1: a few ulp (1e-6 relative).
    EXPECT_NEAR(got[j].item<double>(), want, 1e-6 * want) << "frequency " << j;
  }
  EXPECT_GT(bands[0], 0);  // every band occurs in the fixture, so each branch is checked
  EXPECT_GT(bands[1], 0);
  EXPECT_GT(bands[2], 0);
}

// ---- 4. random models: sliding window, attention_bias, linear RoPE, Qwen3 with biases ----

TEST(ModernArch, RandomModelsMatchAPositionByPositionFloat64Forward) {
  for (const RandomModel& rm : random_models()) {
    test::TempDir d;
    const Weights w = write_random_model(rm, d.path());
    const auto m = model::LlamaModel::load(d.path(), at::kFloat);
    const std::vector<int64_t> ids = some_ids(24, rm.arch.vocab, 7);
    const at::Tensor want = ref_logits(rm.arch, w, ids);
    const at::Tensor all = at::tensor(ids, at::kLong).view({1, -1});
    const at::Tensor got = m.forward(all)[0].to(at::kDouble);
    const double tol = fixture_tolerance(want);  // fp32 against float64 at the fixtures' sizes and scales
    const double err = (got - want).abs().max().item<double>();
    EXPECT_LE(err, tol) << rm.name;
    std::printf("[ random   ] %-17s max |logit - ref| %.3e (tolerance %.3e)\n", rm.name.c_str(), err, tol);
    // Cached decode: a 3-token prefill, a 4-token continuation (offset, banded mask), then one at a time
    // (single queries with keys outside the window).
    model::KvCache cache = m.new_cache(1, 24);
    std::vector<at::Tensor> parts{m.forward(all.narrow(1, 0, 3), &cache), m.forward(all.narrow(1, 3, 4), &cache)};
    for (int64_t p = 7; p < 24; ++p) parts.push_back(m.forward(all.narrow(1, p, 1), &cache));
    EXPECT_LE((at::cat(parts, 1)[0].to(at::kDouble) - want).abs().max().item<double>(), tol) << rm.name << " cached";
    if (rm.arch.window > 0) {
      // The window changes the logits far beyond the tolerance: this comparison can tell a band mask
      // from a plain causal one. Positions below the window are the same by construction.
      Arch full = rm.arch;
      full.window = 0;
      const at::Tensor causal = ref_logits(full, w, ids);
      const int64_t W = rm.arch.window;
      EXPECT_LT((causal.narrow(0, 0, W) - want.narrow(0, 0, W)).abs().max().item<double>(), 1e-12);
      EXPECT_GT((causal.narrow(0, W, 24 - W) - want.narrow(0, W, 24 - W)).abs().max().item<double>(), 100 * tol);
    }
  }
}

// The training path (ShardedLlama: flat units holding biases and q/k norms) against float64 autograd
// through the position-by-position forward.
TEST(ModernArch, ShardedLossAndGradientsMatchFloat64Autograd) {
  for (const RandomModel& rm : random_models()) {
    test::TempDir d;
    const Weights w32 = write_random_model(rm, d.path());
    Weights w;
    for (const auto& [n, t] : w32) w[n] = t.clone().requires_grad_(true);
    const std::vector<int64_t> ids = some_ids(20, rm.arch.vocab, 11);
    const at::Tensor want_loss = ref_loss_sum(ref_logits(rm.arch, w, ids), ids);
    want_loss.backward();

    auto comm = dist::make_local_communicator();
    const model::HfCheckpoint ck(d.path());
    model::ShardedLlama m(ck.config(), *comm, dist::ShardingOptions{}, true);
    m.load(ck);
    data::Example e;
    for (const int64_t id : ids) e.ids.push_back(static_cast<int32_t>(id));
    e.set_prompt_length(1);
    const data::Batch b = data::collate({e}, {{0, 0}}, 0);
    ASSERT_EQ(b.n_targets, 19);
    const model::MicroResult r = m.forward_backward(b, 1.0, true, nullptr);
    // 19 token losses, each within ~2 logit tolerances of the reference.
    const double tol = 2 * 19 * fixture_tolerance(ref_logits(rm.arch, w32, ids));
    EXPECT_NEAR(r.loss_sum.item<double>(), want_loss.item<double>(), tol) << rm.name;

    size_t seen = 0;
    for (auto* u : m.units()) {
      for (size_t i = 0; i < u->layout().params.size(); ++i, ++seen) {
        const std::string& name = u->layout().params[i].name;
        const at::Tensor got = u->param_of(u->grads(), i).to(at::kDouble), want = w.at(name).grad();
        // fp32 against float64 (as the stories260K gradient check): 1e-3 of the tensor's largest entry.
        EXPECT_LT((got - want).abs().max().item<double>(), 1e-3 * want.abs().max().item<double>() + 1e-9)
            << rm.name << " " << name;
      }
    }
    EXPECT_EQ(seen, w.size()) << rm.name;  // every tensor of the model is in a unit
  }
}

TEST(ModernArch, UnitsCountEveryTensorAndDecayOnlyMatrices) {
  for (const RandomModel& rm : random_models()) {
    const model::LlamaConfig c = model::LlamaConfig::from_json_text(rm.config.dump(), rm.name);
    int64_t layer = 0;
    for (const auto& p : model::layer_unit_params(c, 0)) {
      layer += p.numel();
      // HF/TRL's default: no weight decay on biases and norm weights.
      EXPECT_EQ(p.decay, p.shape.size() == 2) << p.name;
    }
    EXPECT_EQ(c.unit_sizes().layer, layer) << rm.name;  // the memory budget counts what the units hold
  }
}

// ---- 2. train, export and reload: config.json fields and logits survive ----

void expect_same_config(const json& src, const json& out, const std::string& what) {
  for (const auto& [key, value] : src.items()) {
    if (key == "use_cache" || key == "max_window_layers") continue;  // HF runtime knobs, not the model
    ASSERT_TRUE(out.contains(key)) << what << ": " << key << " missing";
    EXPECT_EQ(out[key], value) << what << ": " << key;
  }
}

void expect_fixture_logits(const std::string& model_dir, const json& ref, const std::string& what) {
  const auto m = model::LlamaModel::load(model_dir, at::kFloat);
  for (const auto& c : ref["cases"]) {
    const at::Tensor want = to_tensor(c["logits"]);
    const at::Tensor got =
        m.forward(at::tensor(c["input_ids"].get<std::vector<int64_t>>(), at::kLong).view({1, -1}))[0].to(at::kDouble);
    EXPECT_LE((got - want).abs().max().item<double>(), fixture_tolerance(want)) << what;
  }
}

TEST(ModernRoundTrip, TrainedAtLrZeroExportedAndReloaded) {
  for (const char* family : kFamilies) {
    NEFTUNE_REQUIRE_FIXTURE(dir, std::string("modern/") + family);
    SCOPED_TRACE(family);
    const json src = test::read_json(dir + "/config.json"), ref = test::read_json(dir + "/reference.json");
    test::TempDir d;
    {
      // One real step (NEFTune, AdamW) at lr 0: the weights stay bit for bit what was loaded.
      run::Trainer t(test::small_train_config(d / "run", {"model.path=" + dir, "train.lr=0", "train.max_steps=1"}),
                     dist::world());
      t.train();
    }
    const std::string final_dir = d / "run/final";
    expect_same_config(src, test::read_json(final_dir + "/config.json"), "final/config.json");
    io::SafetensorsFile in(dir + "/model.safetensors"), out(final_dir + "/model.safetensors");
    for (const auto& e : in.header().tensors) EXPECT_TRUE(at::equal(in.load(e.name), out.load(e.name))) << e.name;
    EXPECT_EQ(in.header().tensors.size(), out.header().tensors.size());
    expect_fixture_logits(final_dir, ref, "final/");

    // `neftune export` of the checkpoint: the same.
    const std::string exported = d / "exported";
    run::export_checkpoint(d / "run/checkpoints/step-00000001", exported, {});
    expect_same_config(src, test::read_json(exported + "/config.json"), "exported config.json");
    expect_fixture_logits(exported, ref, "exported");

    // `neftune generate` reads it back: greedy tokens as this process decodes them.
    const auto r = test::run_command(test::neftune_bin() + " generate --model " + final_dir +
                                     " --prompt 'Name a colour.' --max-new-tokens 6 --temperature 0 --json");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const json g = json::parse(r.output.substr(r.output.rfind("\n{") + 1));  // the last line
    run::GenerateOptions o;
    o.max_new_tokens = 6;
    const auto m = model::LlamaModel::load(final_dir, at::kFloat);
    EXPECT_EQ(g["output_ids"].get<std::vector<int32_t>>(),
              run::generate(m, g["prompt_ids"].get<std::vector<int32_t>>(), o, m.config().eos_token_id));
  }
}

TEST(ModernRoundTrip, InitMakesALlama3ArchitectureModel) {
  test::TempDir d;
  const std::vector<std::string> sets = {"model.init.rope_theta=500000", "model.init.rope_scaling.type=llama3",
                                         "model.init.rope_scaling.original_context=64", "train.max_steps=2"};
  {
    run::Trainer t(test::small_train_config(d / "run", sets), dist::world());
    t.train();
  }
  const json out = test::read_json(d / "run/final/config.json");
  EXPECT_EQ(out["architectures"], json({"LlamaForCausalLM"}));
  EXPECT_EQ(out["rope_theta"], 500000.0);
  EXPECT_EQ(out["tie_word_embeddings"], false);
  EXPECT_EQ(out["rope_scaling"], json({{"rope_type", "llama3"},
                                       {"factor", 8.0},
                                       {"low_freq_factor", 1.0},
                                       {"high_freq_factor", 4.0},
                                       {"original_max_position_embeddings", 64}}));
  const auto m = model::LlamaModel::load(d / "run/final", at::kFloat);
  EXPECT_EQ(m.config().rope_scaling.type, model::RopeScaling::Type::llama3);
  EXPECT_EQ(m.config().to_json_text(), test::read_file(d / "run/final/config.json"));

  EXPECT_THAT(test::error_of([&] {
                config::parse_config(
                    "", "t", {"model.init.rope_scaling.type=llama3", "model.init.rope_scaling.high_freq_factor=0.5"});
              }),
              HasSubstr("model.init.rope_scaling.high_freq_factor: must be > low_freq_factor"));
}

// ---- 3. checkpoints: bit-exact resume, and a different architecture refused ----

std::vector<std::string> fixture_run(const std::string& model_dir) {
  return {"model.path=" + model_dir, "train.max_steps=6", "train.accumulation_steps=2"};
}

std::map<std::string, at::Tensor> full_weights(run::Trainer& t) {
  std::map<std::string, at::Tensor> w;
  t.model().for_each_full_param([&](const std::string& n, const at::Tensor& v) { w[n] = v.clone(); });
  return w;
}

TEST(ModernCheckpoint, ResumeIsBitExact) {
  for (const char* family : {"qwen2", "qwen3"}) {
    NEFTUNE_REQUIRE_FIXTURE(dir, std::string("modern/") + family);
    SCOPED_TRACE(family);
    test::TempDir d;
    std::vector<double> la, lb;
    std::map<std::string, at::Tensor> wa, wb;
    {
      run::Trainer a(test::small_train_config(d / "a", fixture_run(dir)), dist::world());
      for (int i = 0; i < 6; ++i) la.push_back(a.train_step().loss);
      wa = full_weights(a);
    }
    {
      run::Trainer b(test::small_train_config(d / "b", fixture_run(dir)), dist::world());
      for (int i = 0; i < 3; ++i) lb.push_back(b.train_step().loss);
      b.save_checkpoint();
    }
    {
      run::Trainer b(test::small_train_config(d / "b", fixture_run(dir)), dist::world());
      for (int i = 0; i < 3; ++i) lb.push_back(b.train_step().loss);
      wb = full_weights(b);
    }
    for (size_t i = 0; i < 6; ++i) EXPECT_EQ(la[i], lb[i]) << "step " << i + 1;  // bit-identical
    ASSERT_EQ(wa.size(), wb.size());
    for (const auto& [name, w] : wa) EXPECT_TRUE(at::equal(w, wb.at(name))) << name;

    // The same weights under another architecture's config: refused, naming the field.
    const std::string other = d / "other";
    fs::create_directories(other);
    fs::copy_file(dir + "/model.safetensors", other + "/model.safetensors");
    json cfg = test::read_json(dir + "/config.json");
    cfg["rope_theta"] = 20000.0;
    test::write_file(other + "/config.json", cfg.dump());
    EXPECT_THAT(
        test::error_of([&] { run::Trainer t(test::small_train_config(d / "b", fixture_run(other)), dist::world()); }),
        HasSubstr("written for a different model (checkpoint vs this run: rope_theta 1000000.0 vs 20000.0)"));
  }
}

// ---- 5. what is not computed is refused, naming the file and the field ----

TEST(ModernConfig, WhatIsNotComputedIsRefusedNamingTheField) {
  const json base = {{"hidden_size", 32},        {"intermediate_size", 64}, {"num_hidden_layers", 2},
                     {"num_attention_heads", 4}, {"vocab_size", 50},        {"max_position_embeddings", 64}};
  auto error_with = [&](const json& patch) {
    json j = base;
    j.merge_patch(patch);
    return test::error_of([&] { model::LlamaConfig::from_json_text(j.dump(), "m/config.json"); });
  };
  EXPECT_EQ(error_with({{"model_type", "qwen2"}}), "");
  EXPECT_THAT(error_with({{"model_type", "gemma"}}), HasSubstr("m/config.json: model_type 'gemma' is not supported"));
  EXPECT_THAT(error_with({{"architectures", {"GemmaForCausalLM"}}}),
              HasSubstr("m/config.json: no model_type, and architectures [\"GemmaForCausalLM\"]"));
  EXPECT_THAT(error_with({{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}}),
              HasSubstr("m/config.json: rope_scaling: rope_type 'yarn' is not supported"));
  EXPECT_THAT(error_with({{"rope_scaling", {{"type", "dynamic"}, {"factor", 2.0}}}}),
              HasSubstr("m/config.json: rope_scaling: type 'dynamic' is not supported"));
  EXPECT_THAT(error_with({{"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}}}),
              HasSubstr("m/config.json: rope_scaling: missing field 'low_freq_factor'"));
  EXPECT_THAT(error_with({{"rope_parameters", {{"rope_type", "longrope"}}}}),
              HasSubstr("m/config.json: rope_parameters: rope_type 'longrope' is not supported"));
  EXPECT_THAT(error_with({{"model_type", "mistral"}, {"attention_bias", true}}),
              HasSubstr("m/config.json: attention_bias: true on model_type 'mistral'"));
  EXPECT_THAT(error_with({{"model_type", "qwen2"}, {"attention_bias", true}}),
              HasSubstr("m/config.json: attention_bias: true on model_type 'qwen2'"));
  EXPECT_THAT(error_with({{"mlp_bias", true}}), HasSubstr("m/config.json: mlp_bias: true is not supported"));
  EXPECT_THAT(error_with({{"model_type", "qwen2"}, {"use_sliding_window", true}}),
              HasSubstr("m/config.json: use_sliding_window: true is not supported for qwen2"));
  EXPECT_THAT(error_with({{"model_type", "qwen3"}, {"layer_types", {"full_attention", "sliding_attention"}}}),
              HasSubstr("m/config.json: layer_types: only \"full_attention\" layers are supported"));
  EXPECT_THAT(error_with({{"sliding_window", 16}}),
              HasSubstr("m/config.json: sliding_window is not a field of model_type 'llama'"));
  EXPECT_THAT(error_with({{"model_type", "mistral"}, {"sliding_window", 0}}),
              HasSubstr("m/config.json: sliding_window must be > 0 or null"));
  EXPECT_THAT(error_with({{"hidden_act", "gelu"}}), HasSubstr("m/config.json: hidden_act 'gelu' is not supported"));
  EXPECT_THAT(error_with({{"attention_dropout", 0.1}}), HasSubstr("m/config.json: attention_dropout must be 0"));
  EXPECT_THAT(error_with({{"rope_scaling", {{"rope_type", "linear"}, {"factor", -2.0}}}}),
              HasSubstr("m/config.json: rope_scaling.factor must be > 0"));

  // Accepted: HF's spellings of "nothing to scale" and transformers 5's rope_parameters; HF's defaults.
  EXPECT_EQ(error_with({{"rope_scaling", {{"rope_type", "default"}}}}), "");
  json mistral = base;
  mistral["model_type"] = "mistral";
  EXPECT_EQ(model::LlamaConfig::from_json_text(mistral.dump(), "m").sliding_window, 4096);  // absent: MistralConfig's
  mistral["sliding_window"] = nullptr;
  EXPECT_FALSE(model::LlamaConfig::from_json_text(mistral.dump(), "m").sliding_window.has_value());
  const json v5 = {{"rope_parameters",
                    {{"rope_type", "llama3"},
                     {"rope_theta", 500000.0},
                     {"factor", 32.0},
                     {"low_freq_factor", 1.0},
                     {"high_freq_factor", 4.0},
                     {"original_max_position_embeddings", 8192}}}};
  json j = base;
  j.merge_patch(v5);
  const model::LlamaConfig c = model::LlamaConfig::from_json_text(j.dump(), "v5");
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_EQ(model::LlamaConfig::from_json_text(c.to_json_text(), "again").to_json_text(), c.to_json_text());
}

TEST(ModernConfig, WeightsTheConfigDoesNotImplyAreRefused) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/qwen2");
  test::TempDir d;
  fs::copy_file(dir + "/model.safetensors", d / "model.safetensors");
  json cfg = test::read_json(dir + "/config.json");
  cfg["model_type"] = "llama";  // a Qwen2 checkpoint (q/k/v biases) described as LLaMA (none)
  cfg["architectures"] = {"LlamaForCausalLM"};
  cfg.erase("use_sliding_window");
  cfg.erase("sliding_window");
  test::write_file(d / "config.json", cfg.dump());
  EXPECT_THAT(test::error_of([&] { model::HfCheckpoint ck(d.path()); }),
              HasSubstr("model.safetensors: tensor 'model.layers.0.self_attn.k_proj.bias' is not part of the model "
                        "config.json describes (model_type llama, attention_bias false)"));
}

// ---- 3. sharding: N ranks (mpirun) against one rank, and a checkpoint re-sliced from N ranks to one ----

struct RunResult {
  std::vector<double> loss;
  std::map<std::string, at::Tensor> weights;
};

TEST(ModernDist, ShardedRunsMatchTheOneRankRunAndReshardOnResume) {
  dist::World& world = dist::world();
  const int N = world.size;
  for (const char* family : {"qwen2", "qwen3"}) {
    NEFTUNE_REQUIRE_FIXTURE(dir, std::string("modern/") + family);
    SCOPED_TRACE(family);
    // One directory for the N-rank checkpoint, named by rank 0's pid (every rank writes its shard there).
    const double pid = world.host->all_reduce_scalar(world.rank == 0 ? getpid() : 0, dist::ReduceOp::max);
    const std::string shared =
        (fs::temp_directory_path() / ("neftune-modern-" + std::to_string(int64_t(pid)) + "-" + family)).string();
    test::TempDir d;
    auto cfg = [&](const std::string& out, int64_t accumulation, const std::string& checkpoint_dir) {
      return test::small_train_config(
          out, {"model.path=" + dir, "train.max_steps=8", "train.accumulation_steps=" + std::to_string(accumulation),
                "train.max_grad_norm=1.0", "distributed.sharding=full", "checkpoint.dir=" + checkpoint_dir});
    };
    RunResult ref, got;
    if (world.rank == 0) {  // 8 steps on one rank, N x the accumulation
      dist::World single;
      single.host = dist::make_local_communicator();
      run::Trainer t(cfg(d / "ref", int64_t{2} * N, d / "ref_checkpoints"), single);
      for (int i = 0; i < 8; ++i) ref.loss.push_back(t.train_step().loss);
      ref.weights = full_weights(t);
      fs::remove_all(shared);
    }
    world.host->barrier();
    {  // 4 steps on N ranks, then a checkpoint of N shards
      run::Trainer t(cfg(d / "n", 2, shared), world);
      for (int i = 0; i < 4; ++i) got.loss.push_back(t.train_step().loss);
      t.save_checkpoint();
      bool has_new = false;
      for (auto* u : t.model().units()) {
        for (const auto& p : u->layout().params) {
          has_new =
              has_new || p.name.find(std::string(family) == "qwen2" ? "q_proj.bias" : "q_norm") != std::string::npos;
        }
      }
      EXPECT_TRUE(has_new) << "the flat units hold the architecture's own tensors";
    }
    world.host->barrier();
    if (world.rank != 0) continue;
    {  // resumed on one rank from the N-rank checkpoint: re-sliced
      dist::World single;
      single.host = dist::make_local_communicator();
      run::Trainer t(cfg(d / "resumed", int64_t{2} * N, shared), single);
      for (int i = 0; i < 4; ++i) got.loss.push_back(t.train_step().loss);
      got.weights = full_weights(t);
    }
    fs::remove_all(shared);
    // As test_dist_equivalence: only the order of fp32 sums differs (sharded reductions, micro-batch
    // grouping): observed <= 2e-7 relative in the loss (bound 1e-6) and <= 4e-6 in the weights (bound
    // 1e-4 = lr / 20; Adam can move a weight whose gradient is ~0 by up to lr per step on rounding
    // alone). A wrong gradient, bias or norm reduction, scale or noise key changes the loss by >= 1e-3.
    double worst_loss = 0, worst_w = 0;
    for (int i = 0; i < 8; ++i) {
      EXPECT_NEAR(got.loss[i], ref.loss[i], 1e-6 * ref.loss[i]) << "step " << i + 1;
      worst_loss = std::max(worst_loss, std::abs(got.loss[i] - ref.loss[i]) / ref.loss[i]);
    }
    ASSERT_EQ(got.weights.size(), ref.weights.size());
    for (const auto& [name, w] : ref.weights) {
      const double diff = (got.weights.at(name) - w).abs().max().item<double>();
      worst_w = std::max(worst_w, diff);
      EXPECT_LT(diff, 1e-4) << name;
    }
    std::printf("[ equiv    ] %s N=%d (steps 5-8 resumed on 1 rank): max rel loss diff %.2e, max |dw| %.2e\n", family,
                N, worst_loss, worst_w);
  }
}

}  // namespace
}  // namespace neftune
