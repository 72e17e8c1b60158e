// The neftune binary end to end: the generate contract on the real checkpoint, and bad input giving one
// clear error line, a non-zero exit code, and nothing already written lost.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/test_util.h"
#include "trainer/io/safetensors.h"

namespace neftune {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using test::run_command;
using test::TempDir;
using test::write_file;

const char* kTiny =
    "model: {init: {dim: 32, n_layers: 1, n_heads: 2, n_kv_heads: 1, hidden_dim: 64}}\n"
    "data: {builtin_train_size: 16, builtin_eval_size: 4, max_seq_len: 256}\n"
    "train: {max_steps: 2, micro_batch_size: 2, lr: 1e-3}\n"
    "logging: {progress: off}\n";

// The tiny model and data as --set overrides, so a case's YAML can hold any section.
const char* kTinySets =
    " --set model.init.dim=32 --set model.init.n_layers=1 --set model.init.n_heads=2 --set model.init.n_kv_heads=1"
    " --set model.init.hidden_dim=64 --set data.builtin_train_size=16 --set data.builtin_eval_size=4"
    " --set logging.progress=off";

std::string train(const std::string& config, const std::string& extra = "") {
  return test::neftune_bin() + " train " + config + " " + extra;
}

TEST(Cli, GenerateRawJsonReproducesTheReferenceGreedyIds) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "stories260K");
  const auto ref = test::read_json(dir + "/reference.json")["greedy"][0];
  const auto r = run_command(test::neftune_bin() + " generate --model " + dir + " --prompt '" +
                             ref["prompt"].get<std::string>() + "' --max-new-tokens 64 --temperature 0 --raw --json 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["prompt_ids"], ref["input_ids"]);
  EXPECT_EQ(j["output_ids"], ref["output_ids"]);
  EXPECT_EQ(j["text"].get<std::string>(), ref["output_text"].get<std::string>());
}

TEST(Cli, TrainHelpListsEveryKeyWithItsDefault) {
  const auto r = run_command(test::neftune_bin() + " train --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("neftune.alpha"));
  EXPECT_THAT(r.output, HasSubstr("distributed.reduce_every_microbatch"));
  EXPECT_THAT(r.output, HasSubstr("--set"));
}

struct BadCase {
  std::string name, yaml, extra, expect;
};

TEST(Cli, BadInputGivesAClearErrorAndExitCode2) {
  TempDir d;
  write_file(d / "bad.json", R"([{"instruction":"a","output":"b"},{"instruction":"c"}])");
  write_file(d / "empty.json", "[]");
  const std::vector<BadCase> cases = {
      {"missing config", "", "", "cannot open config file"},
      {"broken yaml", "train: {lr: [1,\n", "", "invalid YAML"},
      {"unknown key", "train: {lrr: 1}\n", "", "did you mean 'train.lr'"},
      {"wrong type", "train: {max_steps: lots}\n", "", "train.max_steps: expected an integer, got 'lots'"},
      {"negative size", "train: {micro_batch_size: -1}\n", "", "train.micro_batch_size: must be >= 1"},
      {"seq over model limit", "data: {max_seq_len: 1024}\nmodel: {init: {max_seq_len: 512}}\n", "",
       "data.max_seq_len 1024 exceeds the model's max_position_embeddings 512"},
      {"missing data file", "data: {train: /nonexistent/train.json}\n", "", "/nonexistent/train.json: cannot open"},
      {"malformed record", "data: {train: " + (d / "bad.json") + "}\n", "", "bad.json: record 1: field 'output' is missing"},
      {"empty dataset", "data: {train: " + (d / "empty.json") + "}\n", "", "empty dataset"},
      {"missing model dir", "model: {path: /nonexistent/model}\n", "", "/nonexistent/model"},
      {"bad --set", "", "--set train.lr=x", "--set train.lr"},
      {"duplicate section", "train: {lr: 1e-3}\ntrain: {seed: 1}\n", "", "duplicate key 'train'"},
  };
  for (const auto& c : cases) {
    const std::string cfg = d / "case.yaml";
    if (c.name == "missing config") {
      fs::remove(cfg);
    } else {
      write_file(cfg, "output_dir: " + (d / "out") + "\n" + c.yaml);
    }
    const auto r = run_command(train(cfg, c.extra + kTinySets));
    EXPECT_EQ(r.exit_code, 2) << c.name << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.expect)) << c.name;
  }
}

TEST(Cli, BrokenCheckpointsAreNamedAndAnExistingFinalSurvives) {
  NEFTUNE_REQUIRE_FIXTURE(src, "stories260K");
  TempDir d;
  // A first good run leaves out/final.
  write_file(d / "ok.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  ASSERT_EQ(run_command(train(d / "ok.yaml")).exit_code, 0);
  const std::string final_weights = test::read_file(d / "out/final/model.safetensors");
  ASSERT_FALSE(final_weights.empty());

  // A checkpoint whose shapes do not match its config.
  fs::create_directories(d / "mismatch");
  for (const char* f : {"model.safetensors", "tokenizer.model"}) fs::copy_file(src + "/" + f, d / ("mismatch/" + std::string(f)));
  std::string cfg = test::read_file(src + "/config.json");
  cfg.replace(cfg.find("\"intermediate_size\": 172"), 24, "\"intermediate_size\": 180");
  write_file(d / "mismatch/config.json", cfg);
  // A truncated safetensors file.
  fs::create_directories(d / "truncated");
  for (const char* f : {"config.json", "tokenizer.model"}) fs::copy_file(src + "/" + f, d / ("truncated/" + std::string(f)));
  const std::string weights = test::read_file(src + "/model.safetensors");
  write_file(d / "truncated/model.safetensors", weights.substr(0, weights.size() / 2));

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"mismatch", "config.json implies [180, 64]"}, {"truncated", "truncated"}};
  for (const auto& [dir, expect] : cases) {
    write_file(d / "bad.yaml", "output_dir: " + (d / "out") + "\nmodel: {path: " + (d / dir) +
                                   "}\ntokenizer: {kind: sentencepiece}\nlogging: {progress: off}\n");
    const auto r = run_command(train(d / "bad.yaml"));
    EXPECT_EQ(r.exit_code, 2) << dir << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(expect)) << dir;
    EXPECT_THAT(r.output, HasSubstr(dir + "/model.safetensors")) << dir;
    const auto gen = run_command(test::neftune_bin() + " generate --model " + (d / dir) + " --prompt hi");
    EXPECT_EQ(gen.exit_code, 2) << gen.output;
  }
  EXPECT_EQ(test::read_file(d / "out/final/model.safetensors"), final_weights);
}

TEST(Cli, QuickTrainThenGenerateAndEvalUseFinal) {
  TempDir d;
  write_file(d / "ok.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  ASSERT_EQ(run_command(train(d / "ok.yaml")).exit_code, 0);
  const auto gen = run_command(test::neftune_bin() + " generate --model " + (d / "out/final") +
                               " --prompt 'Reverse the following word.' --input abc --max-new-tokens 8 --json 2>/dev/null");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  const auto j = nlohmann::json::parse(gen.output);
  EXPECT_LE(j["output_ids"].size(), 8u);
  const auto ev = run_command(test::neftune_bin() + " eval --model " + (d / "out/final") + " --max-samples 8 --json 2>/dev/null");
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  const auto e = nlohmann::json::parse(ev.output);
  EXPECT_TRUE(e.contains("exact_match"));
  EXPECT_EQ(e["generated"].get<int>(), 8);
  EXPECT_GT(e["eval_loss"].get<double>(), 0.0);
}

}  // namespace
}  // namespace neftune
