// The shipped example configs: every one parses, and the one made to run here (a tiny Llama 3
// architecture model with the real Llama 3 tokenizer on the shipped conversations) trains end to end
// under mpirun, exports, answers `generate --chat`, and `neftune eval` on conversations reproduces the
// trainer's own eval loss of the same model and data.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "tests/test_util.h"

namespace neftune {
namespace {

namespace fs = std::filesystem;
using test::run_command;
using test::TempDir;
using ::testing::HasSubstr;

const std::string kSource = NEFTUNE_SOURCE_DIR;

TEST(Examples, EveryExampleConfigParses) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(kSource + "/config/examples")) {
    if (e.path().extension() != ".yaml") continue;
    ++n;
    EXPECT_NO_THROW(config::load_config(e.path().string(), {})) << e.path();
  }
  EXPECT_GE(n, 5);
}

TEST(Examples, TinyLlama3ChatTrainsExportsChatsAndEvals) {
  NEFTUNE_REQUIRE_FIXTURE(tok_dir, "modern/tokenizers/llama3");
  TempDir d;
  const std::string out = d / "run";
  const std::string data = kSource + "/config/examples/data/chat_sample.jsonl";
  // The example as shipped, shortened, with the eval on the training conversations so the trainer's
  // final eval loss and `neftune eval` score the same model on the same examples.
  const auto tr = run_command("cd " + kSource + " && timeout 600 " + test::mpirun(2) + test::neftune_bin() +
                              " train config/examples/tiny_llama3_chat.yaml --set output_dir=" + out +
                              " --set tokenizer.path=" + tok_dir + " --set train.max_steps=12 --set data.eval=" + data +
                              " --set logging.progress=off 2>&1");
  ASSERT_EQ(tr.exit_code, 0) << tr.output;
  EXPECT_THAT(tr.output, HasSubstr("LlamaForCausalLM"));
  EXPECT_THAT(tr.output, HasSubstr("30 conversations (llama3"));
  std::vector<double> losses;
  double final_eval = NAN;
  for (const auto& j : test::read_jsonl(out + "/metrics.jsonl")) {
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
    if (j.contains("eval_loss")) final_eval = j["eval_loss"].get<double>();
  }
  ASSERT_EQ(losses.size(), 12u);
  for (double l : losses) EXPECT_TRUE(std::isfinite(l));
  // Random init over 128256 ids starts near ln(128256) = 11.76 (the replies' tokens only).
  EXPECT_NEAR(losses.front(), std::log(128256.0), 1.0);
  EXPECT_LT(losses.back(), losses.front());
  ASSERT_TRUE(std::isfinite(final_eval));

  const std::string cfg = test::read_file(out + "/final/config.json");
  EXPECT_THAT(cfg, HasSubstr("\"rope_type\": \"llama3\""));

  const auto gen =
      run_command(test::neftune_bin() + " generate --model " + out +
                  "/final --chat --prompt \"Give me a synonym for happy.\" --max-new-tokens 8 --json 2>&1");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  EXPECT_THAT(gen.output, HasSubstr("\"text\""));

  const auto ev = run_command(test::neftune_bin() + " eval --model " + out + "/final --data " + data +
                              " --format messages --max-samples 0 --max-seq-len 512 --json 2>/dev/null");
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  const auto j = nlohmann::json::parse(ev.output.substr(ev.output.find('{')));
  // Same weights and examples; batches differ (eval's --batch-size vs the trainer's micro-batch), so the
  // sums run in another order: fp32 rounding, ~1e-6 relative.
  EXPECT_NEAR(j["eval_loss"].get<double>(), final_eval, 1e-5 * final_eval);
  EXPECT_EQ(j["examples"].get<int64_t>(), 30);
  // Packed rows and the LM head 7 targets at a time: the same sums again, in another order.
  const auto packed = run_command(test::neftune_bin() + " eval --model " + out + "/final --data " + data +
                                  " --format messages --max-samples 0 --max-seq-len 512 --packing "
                                  "--loss-chunk-tokens 7 --json 2>/dev/null");
  ASSERT_EQ(packed.exit_code, 0) << packed.output;
  const auto jp = nlohmann::json::parse(packed.output.substr(packed.output.find('{')));
  EXPECT_NEAR(jp["eval_loss"].get<double>(), final_eval, 1e-5 * final_eval);
  EXPECT_EQ(jp["target_tokens"], j["target_tokens"]);
}

}  // namespace
}  // namespace neftune
