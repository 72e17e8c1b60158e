// What keeps absurd sizes away from the allocator: the host memory and the training state a model needs,
// RoPE tables sized by the lengths used (not max_position_embeddings), parameter counts without overflow,
// the KV cache of generation, and the range of every generation option.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "config/config.h"
#include "distributed/flat_unit.h"
#include "tests/test_util.h"
#include "trainer/infer/generate.h"
#include "trainer/model/llama.h"
#include "trainer/run/memory_budget.h"

namespace neftune::run {
namespace {

using ::testing::HasSubstr;

using test::error_of;

model::LlamaConfig init_config(const std::vector<std::string>& sets) {
  const config::TrainConfig cfg = config::parse_config("", "test", sets);
  return model::LlamaConfig::from_init(cfg.model.init, 259, 256, 257);
}

TEST(HostMemory, ParsesMeminfoAndCgroupFiles) {
  const std::string meminfo = "MemTotal:       24684096 kB\nMemFree:  1 kB\nMemAvailable:   23288548 kB\n";
  EXPECT_EQ(meminfo_bytes(meminfo, "MemTotal"), int64_t{24684096} * 1024);
  EXPECT_EQ(meminfo_bytes(meminfo, "MemAvailable"), int64_t{23288548} * 1024);
  EXPECT_EQ(meminfo_bytes(meminfo, "SwapTotal"), -1);
  EXPECT_EQ(cgroup_limit_bytes("max\n"), -1);                  // v2: no limit
  EXPECT_EQ(cgroup_limit_bytes("9223372036854771712\n"), -1);  // v1: no limit
  EXPECT_EQ(cgroup_limit_bytes("8589934592\n"), int64_t{8} << 30);
  EXPECT_EQ(cgroup_limit_bytes(""), -1);
  // This machine: something is available, and never more than there is.
  const HostMemory m = host_memory();
  EXPECT_GT(m.available, 0);
  EXPECT_LE(m.available, m.total);
  EXPECT_FALSE(m.source.empty());
}

// The README's figure for the quick-start model, and the old formula, from the unit sizes.
TEST(ModelSize, ParameterCountsAreExactAndNeverOverflow) {
  const auto qs = init_config({"model.init.dim=128", "model.init.n_layers=4", "model.init.n_heads=4",
                               "model.init.n_kv_heads=2", "model.init.hidden_dim=352"});
  EXPECT_EQ(qs.num_parameters(), 771584);
  // A config.json whose products overflow 64 bits (3 x 2^40 x 2^31 for the MLP) is refused by name.
  const std::string huge =
      R"({"hidden_size": 2147483648, "intermediate_size": 1099511627776, "num_hidden_layers": 1,
          "num_attention_heads": 1048576, "vocab_size": 32000})";
  EXPECT_THAT(error_of([&] { model::LlamaConfig::from_json_text(huge, "big/config.json"); }),
              HasSubstr("big/config.json: the parameter count does not fit in 64 bits"));
}

// 16 bytes (fp32 weight, gradient, two AdamW moments) per element of this rank's shards, against the
// shard sizes FlatUnit itself lays out for every unit.
TEST(TrainingMemory, StateIsSixteenBytesPerShardElementAsFlatUnitLaysItOut) {
  const auto c =
      init_config({"model.init.dim=64", "model.init.n_layers=3", "model.init.n_heads=4", "model.init.n_kv_heads=2",
                   "model.init.hidden_dim=176", "model.init.tie_embeddings=false"});
  for (const int world : {1, 2, 3, 8}) {
    int64_t shard = 0;
    shard += dist::UnitLayout::make("embed", model::embed_unit_params(c), world).shard_numel();
    for (int64_t l = 0; l < c.num_hidden_layers; ++l)
      shard += dist::UnitLayout::make("layer", model::layer_unit_params(c, l), world).shard_numel();
    shard += dist::UnitLayout::make("head", model::head_unit_params(c), world).shard_numel();
    EXPECT_EQ(training_state_bytes(c, world, config::Sharding::full), 16 * shard) << world;
    EXPECT_EQ(training_state_bytes(c, world, config::Sharding::grad_op), 16 * shard) << world;
  }
  // Replicated: every rank holds everything.
  EXPECT_EQ(training_state_bytes(c, 8, config::Sharding::none), 16 * c.num_parameters());
}

TEST(TrainingMemory, AModelThatCannotFitIsRefusedWithWhatItNeedsAndWhatThereIs) {
  config::TrainConfig cfg = config::parse_config("", "test", {});
  dist::World one;  // a single process
  // The quick-start model (12 MB of state) fits anywhere.
  EXPECT_EQ(error_of([&] { check_training_memory(init_config({}), cfg, one, at::kCPU); }), "");
  // Within every validate() bound, but 9.1e14 parameters: 14.6 PB of state.
  const auto big = init_config({"model.init.dim=65536", "model.init.n_heads=64", "model.init.n_kv_heads=64",
                                "model.init.n_layers=4096", "model.init.hidden_dim=1048576"});
  const std::string err = error_of([&] { check_training_memory(big, cfg, one, at::kCPU); });
  EXPECT_THAT(err, HasSubstr("the model (model.init, 9.15e+14 parameters) needs at least 14.6 PB per rank"));
  EXPECT_THAT(err, HasSubstr(" available ("));
  EXPECT_THAT(err, HasSubstr("model.init.dim, n_layers, hidden_dim"));
  // The state lives on the GPU there: the host check does not apply.
  EXPECT_EQ(error_of([&] { check_training_memory(big, cfg, one, at::Device(at::kCUDA, 0)); }), "");
}

// A config.json may say max_position_embeddings: 1e9 (HF ones say 131072): the tables cover what runs.
TEST(Rope, TablesCoverTheLengthsUsedAndAPositionNeverDependsOnTheLength) {
  auto c = init_config({});
  c.max_position_embeddings = 1000000000;
  model::Rope a(c, at::kCPU), b(c, at::kCPU);
  EXPECT_EQ(a.length(), 0);
  a.reserve(10);
  EXPECT_EQ(a.length(), 64);  // one block
  a.reserve(300);
  b.reserve(300);
  EXPECT_EQ(a.length(), 320);
  EXPECT_TRUE(a.cos.equal(b.cos) && a.sin.equal(b.sin));  // grown in steps or at once: bit for bit
  model::Rope longer(c, at::kCPU);
  longer.reserve(1000);
  EXPECT_TRUE(longer.cos.narrow(0, 0, 320).equal(a.cos));
  // HF's closed form, in double: cos/sin(p / theta^(2j/hd)) on both halves. Tolerance 1e-4: the table
  // rounds inv_freq and p * inv_freq to fp32 (relative 6e-8 of angles up to 300 rad).
  const int64_t hd = c.head_dim;
  double worst = 0;
  for (int64_t p = 0; p < 300; p += 7) {
    for (int64_t j = 0; j < hd; ++j) {
      const double angle =
          static_cast<double>(p) / std::pow(c.rope_theta, 2.0 * static_cast<double>(j % (hd / 2)) / hd);
      worst = std::max(worst, std::abs(a.cos[p][j].item<double>() - std::cos(angle)));
      worst = std::max(worst, std::abs(a.sin[p][j].item<double>() - std::sin(angle)));
    }
  }
  EXPECT_LT(worst, 1e-4);
  // Never past the model's own limit.
  c.max_position_embeddings = 100;
  model::Rope capped(c, at::kCPU);
  capped.reserve(100);
  EXPECT_EQ(capped.length(), 100);
  EXPECT_THAT(error_of([&] { capped.reserve(101); }), HasSubstr("exceeds max_position_embeddings 100"));
}

TEST(Generation, EveryOptionOutsideItsRangeIsNamedWithTheRange) {
  const std::vector<std::pair<std::function<void(GenerateOptions&)>, std::string>> cases = {
      {[](GenerateOptions& o) { o.max_new_tokens = -5; }, "--max-new-tokens: must be in [1, 1048576] (got -5)"},
      {[](GenerateOptions& o) { o.max_new_tokens = 0; }, "--max-new-tokens: must be in [1, 1048576] (got 0)"},
      {[](GenerateOptions& o) { o.max_new_tokens = int64_t{1} << 40; }, "--max-new-tokens: must be in [1, 1048576]"},
      {[](GenerateOptions& o) { o.temperature = std::nan(""); },
       "--temperature: must be a finite number >= 0 (got nan)"},
      {[](GenerateOptions& o) { o.temperature = -1; }, "--temperature: must be a finite number >= 0 (got -1)"},
      {[](GenerateOptions& o) { o.temperature = INFINITY; }, "--temperature: must be a finite number >= 0 (got inf)"},
      {[](GenerateOptions& o) { o.top_p = 0; }, "--top-p: must be in (0, 1] (got 0)"},
      {[](GenerateOptions& o) { o.top_p = -1; }, "--top-p: must be in (0, 1] (got -1)"},
      {[](GenerateOptions& o) { o.top_p = 2; }, "--top-p: must be in (0, 1] (got 2)"},
      {[](GenerateOptions& o) { o.top_p = std::nan(""); }, "--top-p: must be in (0, 1] (got nan)"},
      {[](GenerateOptions& o) { o.repetition_penalty = -1; },
       "--repetition-penalty: must be a finite number > 0 (got -1)"},
      {[](GenerateOptions& o) { o.repetition_penalty = 0; },
       "--repetition-penalty: must be a finite number > 0 (got 0)"},
  };
  for (const auto& [set, expect] : cases) {
    GenerateOptions o;
    set(o);
    EXPECT_THAT(error_of([&] { check_generate_options(o); }), HasSubstr(expect)) << expect;
  }
  GenerateOptions edge;
  edge.max_new_tokens = kMaxNewTokens;
  edge.temperature = 0;
  edge.top_p = 1;
  edge.repetition_penalty = 1.2;
  EXPECT_EQ(error_of([&] { check_generate_options(edge); }), "");
}

TEST(Generation, AKvCacheThatCannotFitIsRefusedNamingTheOption) {
  const auto c = init_config(
      {"model.init.dim=4096", "model.init.n_heads=32", "model.init.n_kv_heads=32", "model.init.n_layers=32"});
  EXPECT_EQ(error_of([&] { check_generation_memory(c, 4096, at::kFloat, at::kCPU, "--max-new-tokens"); }), "");
  // 2 x 32 layers x 4096 x 4 bytes = 1 MB a position: 2^30 positions are 1.1 PB.
  EXPECT_THAT(error_of([&] { check_generation_memory(c, int64_t{1} << 30, at::kFloat, at::kCPU, "--max-new-tokens"); }),
              HasSubstr("--max-new-tokens: 1073741824 positions need a KV cache of 1.1 PB, but this machine has"));
}

}  // namespace
}  // namespace neftune::run
