// The LLaMA implementation against an independent one: llama2.c's run.c logits and greedy tokens for
// the real stories260K checkpoint, and float64 torch-autograd gradients (finite-difference checked).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "distributed/communicator.h"
#include "tests/test_util.h"
#include "trainer/data/batch.h"
#include "trainer/infer/generate.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/model/sharded_llama.h"

namespace neftune {
namespace {

using nlohmann::json;

at::Tensor to_tensor(const json& rows) {
  std::vector<float> flat;
  int64_t r = 0, c = 0;
  for (const auto& row : rows) {
    c = static_cast<int64_t>(row.size());
    for (const auto& v : row) flat.push_back(v.get<float>());
    ++r;
  }
  return at::tensor(flat).view({r, c});
}

TEST(ModelFixture, TeacherForcedLogitsMatchRunC) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "stories260K");
  const json ref = test::read_json(dir + "/reference.json");
  const auto ids = ref["teacher_forced"]["input_ids"].get<std::vector<int64_t>>();
  const auto m = model::LlamaModel::load(dir, at::kFloat);
  const at::Tensor logits = m.forward(at::tensor(ids).view({1, -1}))[0];  // (12, 512)
  const at::Tensor expected = to_tensor(ref["teacher_forced"]["logits"]);
  const double tol = ref["tolerance"]["logits_max_abs"].get<double>();  // 1e-4, the fixture's stated check
  EXPECT_LT((logits - expected).abs().max().item<double>(), tol);
  // The stored logits are rounded to 6 decimals; the mean NLL is stored too.
  const at::Tensor nll = -at::log_softmax(logits.narrow(0, 0, 11), -1)
                              .gather(1, at::tensor(std::vector<int64_t>(ids.begin() + 1, ids.end())).view({-1, 1}));
  EXPECT_NEAR(nll.mean().item<double>(), ref["teacher_forced"]["mean_next_token_nll"].get<double>(), 1e-5);
}

TEST(ModelFixture, KvCacheGreedyDecodeReproducesRunCExactly) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "stories260K");
  const json ref = test::read_json(dir + "/reference.json");
  const auto m = model::LlamaModel::load(dir, at::kFloat);
  ASSERT_GE(ref["greedy"].size(), 2u);
  for (const auto& g : ref["greedy"]) {
    const auto prompt = g["input_ids"].get<std::vector<int32_t>>();
    const auto expected = g["output_ids"].get<std::vector<int32_t>>();
    run::GenerateOptions o;
    o.max_new_tokens = static_cast<int64_t>(expected.size());
    // run.c stops on BOS, never on EOS; no EOS is produced in these 64 tokens (margin >= 0.021).
    const auto out = run::generate(m, prompt, o, /*eos_id=*/-1);
    EXPECT_EQ(out, expected) << g["prompt"];
  }
}

TEST(ModelFixture, CacheFreeAndCachedForwardAgree) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "stories260K");
  const auto m = model::LlamaModel::load(dir, at::kFloat);
  const at::Tensor ids = at::tensor(std::vector<int64_t>{1, 403, 407, 261, 378, 383, 286, 261}).view({1, -1});
  const at::Tensor full = m.forward(ids);
  model::KvCache cache = m.new_cache(1, 8);
  const at::Tensor a = m.forward(ids.narrow(1, 0, 5), &cache);
  const at::Tensor b = m.forward(ids.narrow(1, 5, 3), &cache);  // a multi-token continuation (offset mask)
  // fp32, the same ops in a different grouping: agreement to float rounding.
  EXPECT_LT((at::cat({a, b}, 1) - full).abs().max().item<double>(), 1e-4);
}

TEST(ModelFixture, Bf16ForwardStaysCloseToFp32) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "stories260K");
  const json ref = test::read_json(dir + "/reference.json");
  const auto ids = ref["teacher_forced"]["input_ids"].get<std::vector<int64_t>>();
  const at::Tensor f32 = model::LlamaModel::load(dir, at::kFloat).forward(at::tensor(ids).view({1, -1}));
  const at::Tensor b16 = model::LlamaModel::load(dir, at::kBFloat16).forward(at::tensor(ids).view({1, -1}));
  // bf16 keeps 8 bits of mantissa: logits of magnitude ~20 move by a few tenths through 5 layers.
  EXPECT_LT((f32 - b16).abs().max().item<double>(), 1.0);
  EXPECT_GT((f32.argmax(-1) == b16.argmax(-1)).to(at::kFloat).mean().item<double>(), 0.8);
}

// The model's attention takes softmax in the compute dtype; HF takes it in fp32 and casts the result.
// The kernel accumulates bf16 in fp32 and rounds once, so the probabilities agree (no fixture needed).
TEST(Attention, Bf16SoftmaxEqualsFp32SoftmaxRoundedToBf16) {
  at::manual_seed(7);
  const int64_t L = 96;
  const at::Tensor mask = at::full({L, L}, -std::numeric_limits<float>::infinity()).triu(1);
  for (const double spread : {0.1, 1.0, 8.0}) {  // near-uniform to near-one-hot rows
    const at::Tensor scores = (at::randn({2, 3, L, L}) * spread + mask).to(at::kBFloat16);
    const at::Tensor ours = at::softmax(scores, -1);
    const at::Tensor hf = at::softmax(scores.to(at::kFloat), -1).to(at::kBFloat16);
    // One bf16 ulp (2^-8 relative) at most, where the fp32 exp of the two paths rounds differently.
    const at::Tensor diff = (ours.to(at::kFloat) - hf.to(at::kFloat)).abs();
    EXPECT_TRUE(at::all(diff <= hf.to(at::kFloat).abs() * std::ldexp(1.0, -8)).item<bool>()) << spread;
    // The gradient through each formulation: the same to bf16 rounding of the incoming gradient.
    const at::Tensor g = at::randn({2, 3, L, L}).to(at::kBFloat16);
    const at::Tensor s1 = scores.detach().requires_grad_(true), s2 = scores.detach().requires_grad_(true);
    at::softmax(s1, -1).backward(g);
    at::softmax(s2, -1, at::kFloat).to(at::kBFloat16).backward(g);
    const double scale = s2.grad().to(at::kFloat).abs().max().item<double>();
    EXPECT_LT((s1.grad().to(at::kFloat) - s2.grad().to(at::kFloat)).abs().max().item<double>(), 0.02 * scale)
        << spread;  // bf16 has 8 bits of mantissa: differences of a few ulp of the largest entry
  }
}

// The attention kernel is chosen at compile time from LibTorch's version macros; CMake passes the
// version find_package(Torch) found, so a guard whose macro is undefined (a dead SDPA branch) fails here.
TEST(Attention, BuildCompiledTheKernelItsLibTorchVersionHas) {
  const std::string want = NEFTUNE_CMAKE_TORCH_MAJOR >= 2 ? "sdpa" : "explicit";
  EXPECT_EQ(model::attention_path(), want) << "LibTorch " << NEFTUNE_CMAKE_TORCH_MAJOR << ".x";
}

TEST(ModelFixture, ShardedLossAndGradientsMatchFloat64Autograd) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "stories260K");
  const json ref = test::read_json(dir + "/reference_grads.json");
  const auto ids = ref["input_ids"].get<std::vector<int32_t>>();
  auto comm = dist::make_local_communicator();
  model::ShardedLlama m(model::HfCheckpoint(dir).config(), *comm, dist::ShardingOptions{}, true);
  m.load(model::HfCheckpoint(dir));
  // The whole sequence is the "response": targets at positions 0..10, as the reference loss.
  data::Example e;
  e.ids = ids;
  e.set_prompt_length(1);
  const data::Batch b = data::collate({e}, {{0, 0}}, 0);
  ASSERT_EQ(b.n_targets, 11);
  const model::MicroResult r = m.forward_backward(b, 1.0 / 11.0, true, nullptr);
  EXPECT_NEAR(r.loss_sum.item<double>() / 11.0, ref["loss"]["value"].get<double>(), 1e-5);

  std::map<std::string, at::Tensor> grads;
  for (auto* u : m.units()) {
    for (size_t i = 0; i < u->layout().params.size(); ++i)
      grads[u->layout().params[i].name] = u->param_of(u->grads(), i);
  }
  ASSERT_EQ(grads.size(), ref["grad_l2_norm"].size());
  // fp32 against float64: the fixture advises a relative tolerance of 1e-4 to 1e-3.
  for (const auto& [name, norm] : ref["grad_l2_norm"].items()) {
    const double got = grads.at(name).norm().item<double>(), want = norm.get<double>();
    EXPECT_NEAR(got, want, 1e-3 * want + 1e-7) << name;
  }
  for (const auto& [name, values] : ref["grad_full"].items()) {
    const at::Tensor want = at::tensor(values.get<std::vector<float>>());
    EXPECT_LT((grads.at(name) - want).abs().max().item<double>(), 1e-3 * want.abs().max().item<double>()) << name;
  }
  for (const auto& spot : ref["grad_spot_checks"]) {
    at::Tensor g = grads.at(spot["tensor"].get<std::string>());
    for (const auto& i : spot["index"]) g = g[i.get<int64_t>()];
    const double want = spot["autograd"].get<double>();
    EXPECT_NEAR(g.item<double>(), want, 1e-3 * std::abs(want) + 1e-6) << spot.dump();
  }
}

}  // namespace
}  // namespace neftune
