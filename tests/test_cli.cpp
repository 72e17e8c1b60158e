// The neftune binary end to end: the generate contract on the real checkpoint, and bad input giving one
// clear error line, a non-zero exit code, and nothing already written lost.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <sched.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "tests/test_util.h"
#include "trainer/infer/generate.h"
#include "trainer/io/safetensors.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune {
namespace {

namespace fs = std::filesystem;
using test::run_command;
using test::TempDir;
using test::write_file;
using ::testing::HasSubstr;

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

// An HF-format byte-tokenizer model (d=16, one layer) built to be predictable: every embedding is all
// ones, the layer's projections are zero (it passes x through), so the final hidden state is all ones
// and the LM head row `favourite` is the only non-zero logit: greedy decoding emits that byte forever.
// `max_positions` is what its config.json claims; `vocab` (when > 0) is a vocabulary smaller than the byte
// tokenizer's, and `poison` puts a NaN into the embeddings.
void write_predictable_model(const std::string& dir, int favourite, int64_t max_positions, int64_t vocab = 0,
                             bool poison = false) {
  config::ModelInit init;
  init.dim = 16;
  init.n_layers = 1;
  init.n_heads = 2;
  init.n_kv_heads = 1;
  init.hidden_dim = 32;
  init.max_seq_len = max_positions;
  init.tie_embeddings = false;
  const tok::ByteTokenizer bytes;
  const auto c =
      model::LlamaConfig::from_init(init, vocab > 0 ? vocab : bytes.vocab_size(), bytes.bos_id(), bytes.eos_id());
  std::map<std::string, at::Tensor> w;
  for (const auto& p : model::all_params(c)) w[p.name] = p.shape.size() == 1 ? at::ones(p.shape) : at::zeros(p.shape);
  w[model::kEmbedName].fill_(1.0);
  if (poison) w[model::kEmbedName][3][5].fill_(std::nan(""));
  w[model::kLmHeadName][favourite].fill_(1.0);
  model::write_hf_model(dir, c, [&](const std::string& name) { return w.at(name); }, {});
  bytes.save(dir);
}

// The cores this process may use, counted here independently of neftune.
int my_cores() {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                     : static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
}

TEST(Cli, GenerateRawJsonReproducesTheReferenceGreedyIds) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "stories260K");
  const auto ref = test::read_json(dir + "/reference.json")["greedy"][0];
  const auto r =
      run_command(test::neftune_bin() + " generate --model " + dir + " --prompt '" + ref["prompt"].get<std::string>() +
                  "' --max-new-tokens 64 --temperature 0 --raw --json 2>/dev/null");
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
  ASSERT_EQ(mkfifo((d / "pipe.json").c_str(), 0600), 0);
  const std::vector<BadCase> cases = {
      {"missing config", "", "", "cannot open config file"},
      {"broken yaml", "train: {lr: [1,\n", "", "invalid YAML"},
      {"unknown key", "train: {lrr: 1}\n", "", "did you mean 'train.lr'"},
      {"wrong type", "train: {max_steps: lots}\n", "", "train.max_steps: expected an integer, got 'lots'"},
      {"negative size", "train: {micro_batch_size: -1}\n", "", "train.micro_batch_size: must be >= 1"},
      {"seq over model limit", "data: {max_seq_len: 1024}\nmodel: {init: {max_seq_len: 512}}\n", "",
       "data.max_seq_len 1024 exceeds the model's max_position_embeddings 512"},
      {"missing data file", "data: {train: /nonexistent/train.json}\n", "", "/nonexistent/train.json: cannot open"},
      {"malformed record", "data: {train: " + (d / "bad.json") + "}\n", "",
       "bad.json: record 1: field 'output' is missing"},
      {"empty dataset", "data: {train: " + (d / "empty.json") + "}\n", "", "empty dataset"},
      {"missing model dir", "model: {path: /nonexistent/model}\n", "", "/nonexistent/model"},
      {"bad --set", "", "--set train.lr=x", "--set train.lr"},
      {"duplicate section", "train: {lr: 1e-3}\ntrain: {seed: 1}\n", "", "duplicate key 'train'"},
      // Sizes no machine holds: refused by validation, before any allocation (they used to grow memory
      // at 200 MB/s, or die with an allocator's backtrace).
      {"huge micro-batch", "train: {micro_batch_size: 1e9}\n", "", "train.micro_batch_size: must be <= 1048576"},
      {"data.train is a directory", "data: {train: " + d.path() + "}\n", "",
       "config: data.train: " + d.path() + " is a directory"},
      // A FIFO blocked the open for good (SIGTERM ignored); /dev/zero was read without end.
      {"tokenizer.path is a FIFO", "tokenizer: {kind: hf, path: " + (d / "pipe.json") + "}\n", "",
       "pipe.json: a FIFO (named pipe), not a regular file"},
      {"data.train is a FIFO", "data: {train: " + (d / "pipe.json") + "}\n", "",
       "pipe.json: a FIFO (named pipe), not a regular file"},
      {"data.train is a device", "data: {train: /dev/zero}\n", "", "/dev/zero: a device, not a regular file"},
  };
  for (const auto& c : cases) {
    const std::string cfg = d / "case.yaml";
    if (c.name == "missing config") {
      fs::remove(cfg);
    } else {
      write_file(cfg, "output_dir: " + (d / "out") + "\n" + c.yaml);
    }
    const auto r =
        run_command("timeout -k 5 60 " + train(cfg, c.extra + kTinySets));  // SIGKILL: a blocked open ignores SIGTERM
    EXPECT_EQ(r.exit_code, 2) << c.name << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.expect)) << c.name;
  }
  const auto fifo_config = run_command("timeout -k 5 60 " + train(d / "pipe.json"));
  EXPECT_EQ(fifo_config.exit_code, 2) << fifo_config.output;
  EXPECT_THAT(fifo_config.output, HasSubstr("pipe.json: a FIFO (named pipe), not a regular file: the config file"));
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
  for (const char* f : {"model.safetensors", "tokenizer.model"})
    fs::copy_file(src + "/" + f, d / ("mismatch/" + std::string(f)));
  std::string cfg = test::read_file(src + "/config.json");
  cfg.replace(cfg.find("\"intermediate_size\": 172"), 24, "\"intermediate_size\": 180");
  write_file(d / "mismatch/config.json", cfg);
  // A truncated safetensors file.
  fs::create_directories(d / "truncated");
  for (const char* f : {"config.json", "tokenizer.model"})
    fs::copy_file(src + "/" + f, d / ("truncated/" + std::string(f)));
  const std::string weights = test::read_file(src + "/model.safetensors");
  write_file(d / "truncated/model.safetensors", weights.substr(0, weights.size() / 2));

  const std::vector<std::pair<std::string, std::string>> cases = {{"mismatch", "config.json implies [180, 64]"},
                                                                  {"truncated", "truncated"}};
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
  const auto gen =
      run_command(test::neftune_bin() + " generate --model " + (d / "out/final") +
                  " --prompt 'Reverse the following word.' --input abc --max-new-tokens 8 --json 2>/dev/null");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  const auto j = nlohmann::json::parse(gen.output);
  EXPECT_LE(j["output_ids"].size(), 8u);
  const auto ev =
      run_command(test::neftune_bin() + " eval --model " + (d / "out/final") + " --max-samples 8 --json 2>/dev/null");
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  const auto e = nlohmann::json::parse(ev.output);
  EXPECT_TRUE(e.contains("exact_match"));
  EXPECT_EQ(e["generated"].get<int>(), 8);
  EXPECT_GT(e["eval_loss"].get<double>(), 0.0);
}

// CLI11 exits with its own codes (105, 106, 109, ...); every bad command line is bad input: 2.
TEST(Cli, CommandLineErrorsExitWith2) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "A subcommand is required"},                                             // CLI11: 106
      {"train", "config is required"},                                              // 106
      {"generate --model m --prompt p --bogus", "--bogus"},                         // 109
      {"generate --model m --prompt p --max-new-tokens lots", "--max-new-tokens"},  // 101
      {"export a b --dtype fp16", "--dtype"},                                       // 105
      {"nonsense", "A subcommand is required"},                                     // 106
  };
  for (const auto& [args, expect] : cases) {
    const auto r = run_command(test::neftune_bin() + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(expect)) << args;
  }
  EXPECT_EQ(run_command(test::neftune_bin() + " --version").exit_code, 0);
  EXPECT_EQ(run_command(test::neftune_bin() + " generate --help").exit_code, 0);
}

// Each is refused before the model is even looked at (the model path does not exist), naming the option
// and its range; on a real model they used to crash in LibTorch or be silently accepted.
TEST(Cli, GenerationOptionsOutsideTheirRangeExitWith2) {
  TempDir d;
  write_predictable_model(d / "m", 'x', 64);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"generate --max-new-tokens -5", "--max-new-tokens: must be in [1, 1048576] (got -5)"},
      {"generate --temperature nan", "--temperature: must be a finite number >= 0 (got nan)"},
      {"generate --temperature -1", "--temperature: must be a finite number >= 0 (got -1)"},
      {"generate --temperature 1 --top-p 0", "--top-p: must be in (0, 1] (got 0)"},
      {"generate --temperature 1 --top-p -1", "--top-p: must be in (0, 1] (got -1)"},
      {"generate --top-p 2", "--top-p: must be in (0, 1] (got 2)"},
      {"generate --repetition-penalty -1", "--repetition-penalty: must be a finite number > 0 (got -1)"},
      {"generate --threads -1", "--threads: must be >= 0 (got -1)"},
      {"eval --max-new-tokens -5", "--max-new-tokens: must be in [1, 1048576] (got -5)"},
      {"eval --repetition-penalty 0", "--repetition-penalty: must be a finite number > 0 (got 0)"},
      {"eval --max-samples 1e12", "--max-samples"},
      {"eval --loss-chunk-tokens -1", "--loss-chunk-tokens >= 0 are required"},
  };
  for (const auto& [args, expect] : cases) {
    const bool gen = args.rfind("generate", 0) == 0;
    for (const std::string& model : {d / "m", d / "missing"}) {
      const auto r = run_command(test::neftune_bin() + " " + args + " --model " + model + (gen ? " --prompt hi" : ""));
      EXPECT_EQ(r.exit_code, 2) << args << " on " << model << "\n" << r.output;
      EXPECT_THAT(r.output, HasSubstr(expect)) << args << " on " << model;
      EXPECT_THAT(r.output, ::testing::Not(HasSubstr("Exception raised from"))) << args;  // no LibTorch backtrace
    }
  }
}

// Found by a hostile-input probe: each was exit 1 with a library's message (std::invalid_argument,
// "index out of range in self", inf/nan probabilities), or a NaN weight trained until the loss was
// blamed on the learning rate.
TEST(Cli, GenerationInputsThatCrashedAreUserErrorsOrWork) {
  TempDir d;
  write_predictable_model(d / "m", 'x', 64);
  const std::string gen = test::neftune_bin() + " generate --model " + (d / "m");
  // No tokens at all (`--raw ""` with a tokenizer that has no BOS); this one has a BOS, so in process.
  const auto model = model::LlamaModel::load(d / "m", at::kFloat);
  EXPECT_THAT(test::error_of([&] { run::generate(model, {}, run::GenerateOptions{}, 0); }),
              HasSubstr("generate: the prompt has no tokens (with --raw nothing is added to it"));
  EXPECT_THROW(run::generate(model, {}, run::GenerateOptions{}, 0), UserError);
  auto r = run_command(gen + " --raw --prompt " + std::string(100, 'a'));  // BOS + 100 bytes
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("the prompt is 101 tokens, which leaves no room under the model's "
                                  "max_position_embeddings 64"));
  // Only 'x' has a non-zero logit (16 against 0): a tiny temperature or top-p leaves it alone.
  for (const char* opts : {"--temperature 1e-40", "--temperature 1 --top-p 1e-50"}) {
    r = run_command(gen + " --raw --prompt hi --max-new-tokens 3 --json " + opts + " 2>/dev/null");
    ASSERT_EQ(r.exit_code, 0) << opts << "\n" << r.output;
    EXPECT_EQ(nlohmann::json::parse(r.output)["text"].get<std::string>(), "xxx") << opts;
  }
  // A model whose vocabulary is smaller than its tokenizer's (258 rows for 259 ids: the padding id has none).
  write_predictable_model(d / "small", 'x', 64, 258);
  for (const char* cmd : {"generate --prompt hi", "eval --max-samples 2"}) {
    r = run_command(test::neftune_bin() + " " + cmd + " --model " + (d / "small"));
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr("small: the tokenizer has 259 ids but config.json's vocab_size is 258")) << cmd;
  }
  // A NaN in the weights: named with its tensor, for generate and for training from the model.
  write_predictable_model(d / "nan", 'x', 64, 0, true);
  r = run_command(gen.substr(0, gen.find(" --model")) + " --model " + (d / "nan") + " --prompt hi");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("nan: tensor 'model.embed_tokens.weight' holds 1 NaN or infinite value(s)"));
  write_file(d / "t.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  r = run_command(train(d / "t.yaml", "--set model.path=" + (d / "nan") + " --set data.max_seq_len=64"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("holds 1 NaN or infinite value(s)"));
}

// A byte tokenizer stops wherever max_new_tokens says, also inside a character: JSON needs UTF-8, so
// broken bytes print as U+FFFD (they used to make generate exit 1 with "invalid UTF-8 byte").
TEST(Cli, GenerateJsonPrintsReplacementCharactersForBrokenUtf8) {
  TempDir d;
  write_predictable_model(d / "m", 0xC3, 64);  // 0xC3 starts a two-byte character, never completed here
  const auto r = run_command(test::neftune_bin() + " generate --model " + (d / "m") +
                             " --prompt hi --raw --max-new-tokens 3 --json 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["output_ids"], nlohmann::json({0xC3, 0xC3, 0xC3}));
  EXPECT_EQ(j["text"].get<std::string>(), "\uFFFD\uFFFD\uFFFD");
}

// max_position_embeddings only bounds positions: a model claiming 1e9 (config.json or model.init) used to
// get a 1e9-row RoPE table (tens of GB) before the first token. Tables now follow the lengths used.
TEST(Cli, AModelClaimingAHugeContextRunsInLittleMemory) {
  TempDir d;
  write_predictable_model(d / "m", 'a', 1000000000);
  const auto gen = run_command(test::neftune_bin() + " generate --model " + (d / "m") +
                               " --prompt hi --raw --max-new-tokens 4 --json 2>/dev/null");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  EXPECT_EQ(nlohmann::json::parse(gen.output)["text"].get<std::string>(), "aaaa");
  const auto ev =
      run_command(test::neftune_bin() + " eval --model " + (d / "m") + " --max-samples 2 --max-new-tokens 2");
  EXPECT_EQ(ev.exit_code, 0) << ev.output;
  // Training: a config.json that says 1e9, and model.init.max_seq_len 1e9.
  int run = 0;
  for (const std::string& model : {"--set model.path=" + (d / "m"), std::string("--set model.init.max_seq_len=1e9")}) {
    const std::string out = d / ("out" + std::to_string(run++));
    write_file(d / "t.yaml", std::string(kTiny) + "output_dir: " + out + "\n");
    const auto r = run_command(train(d / "t.yaml", model));
    ASSERT_EQ(r.exit_code, 0) << model << "\n" << r.output;
    // A 1e9-row table alone would be 64 GB (head_dim 8 or 16, cos and sin, fp32).
    for (const auto& line : test::read_jsonl(out + "/metrics.jsonl")) {
      if (line.contains("peak_rss_mb")) {
        EXPECT_LT(line["peak_rss_mb"].get<double>(), 4000.0) << model;
      }
    }
  }
}

TEST(Cli, ThreadsBeyondTheCoresAreCappedWithAWarning) {
  TempDir d;
  const std::string n = std::to_string(my_cores());
  write_file(d / "t.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  const auto r = run_command(train(d / "t.yaml", "--set train.threads=100000"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("train.threads 100000: this process may run on " + n + " core(s); using " + n));
  EXPECT_THAT(r.output, HasSubstr("1 rank(s), 1 per node, " + n + " intra-op thread(s) per rank"));
  write_predictable_model(d / "m", 'x', 64);
  const auto g =
      run_command(test::neftune_bin() + " generate --model " + (d / "m") + " --prompt hi --raw --threads 100000");
  EXPECT_EQ(g.exit_code, 0) << g.output;
  EXPECT_THAT(g.output, HasSubstr("--threads 100000: this process may run on " + n + " core(s); using " + n));
}

// --max-shard-size 10000000000GB overflowed int64 and wrote one file per tensor. Checked before the
// checkpoint is read (here it does not exist): each error is about the size.
TEST(Cli, ExportShardSizesAreParsedWithoutOverflow) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"10000000000GB", "is over 1TB"}, {"1e400", "is not a size"}, {"nan", "is not a size"},
      {"inf", "is not a size"},         {"-5GB", "is not a size"},  {"5XB", "is not a size"},
      {"0.1B", "is under 1 byte"},      {"2TiB", "is over 1TB"},
  };
  for (const auto& [size, expect] : cases) {
    const auto r =
        run_command(test::neftune_bin() + " export /nonexistent/ckpt /nonexistent/out --max-shard-size " + size);
    EXPECT_EQ(r.exit_code, 2) << size << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr("--max-shard-size: '" + size + "' " + expect)) << size;
  }
  for (const std::string size : {"5GB", "500MB", "2GiB", "1e9", "1TB"}) {
    const auto r =
        run_command(test::neftune_bin() + " export /nonexistent/ckpt /nonexistent/out --max-shard-size " + size);
    EXPECT_EQ(r.exit_code, 2) << size;
    EXPECT_THAT(r.output, ::testing::Not(HasSubstr("--max-shard-size"))) << size << "\n" << r.output;
  }
}

// Needs Trainer::setup to call run::check_global_batch after loading the data: a step of more samples
// than the training set has is refused on every rank before any model is built.
TEST(Cli, AGlobalBatchOverTheTrainingExamplesIsRefusedOnEveryRank) {
  TempDir d;
  write_file(d / "t.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  const auto one = run_command(train(d / "t.yaml", "--set train.micro_batch_size=100"));
  EXPECT_EQ(one.exit_code, 2) << one.output;
  EXPECT_THAT(one.output, HasSubstr("train.micro_batch_size 100 x train.accumulation_steps 1 x 1 rank(s) = 100 samples "
                                    "per step (the global batch) exceeds the 16 training examples"));
  // 9 x 1 x 2 = 18 > 16 under mpirun: every rank says so and exits 2.
  const auto two = run_command(test::mpirun(2) + train(d / "t.yaml", "--set train.micro_batch_size=9"));
  EXPECT_EQ(two.exit_code, 2) << two.output;
  EXPECT_THAT(two.output, HasSubstr("= 18 samples per step"));
  EXPECT_THAT(two.output, HasSubstr("[r1] [error]"));
  EXPECT_FALSE(fs::exists(d / "out/metrics.jsonl"));
}

// Needs Trainer::setup to call run::check_training_memory before the model is built: 9.1e14 parameters
// (within every validate() bound) are refused with what they need and what there is, not allocated.
TEST(Cli, AModelThatCannotFitTheMachineIsRefusedBeforeAllocation) {
  TempDir d;
  write_file(d / "t.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  const auto r =
      run_command(train(d / "t.yaml",
                        "--set model.init.dim=65536 --set model.init.n_heads=64 --set model.init.n_kv_heads=64 "
                        "--set model.init.n_layers=4096 --set model.init.hidden_dim=1048576"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("needs at least 14.6 PB per rank for training"));
  EXPECT_THAT(r.output, HasSubstr("but this machine has"));
}

// The reproducers of runs that grew to 5-10 GB: past the absolute bounds, validation refuses them.
TEST(Cli, AbsurdModelSizesAreRefusedByValidation) {
  TempDir d;
  write_file(d / "t.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  for (const auto& [set, expect] : std::vector<std::pair<std::string, std::string>>{
           {"--set model.init.n_layers=1e6", "model.init.n_layers: must be <= 4096"},
           {"--set model.init.dim=1e6", "model.init.dim: must be <= 65536"}}) {
    const auto v = run_command(train(d / "t.yaml", set));
    EXPECT_EQ(v.exit_code, 2) << v.output;
    EXPECT_THAT(v.output, HasSubstr(expect));
  }
}

// An output_dir or checkpoint.dir that cannot be written is bad input, found in setup before any work:
// exit 2 on every rank, with the key, the path and a fix.
TEST(Cli, AnUnwritableOutputOrCheckpointDirExitsWith2OnEveryRank) {
  TempDir d;
  write_file(d / "t.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  write_file(d / "file", "x");
  std::vector<std::pair<std::string, std::string>> cases = {
      {"output_dir=/proc/neftune-out", "output_dir /proc/neftune-out: "},
      {"output_dir=" + (d / "file"), "output_dir " + (d / "file") + ": File exists (a file is in the way"},
      {"checkpoint.dir=/proc/neftune-ckpt",
       "checkpoint.dir /proc/neftune-ckpt: No such file or directory (it cannot be "
       "created there"},
      {"checkpoint.dir=" + (d / "file/ckpt"),
       "checkpoint.dir " + (d / "file/ckpt") + ": Not a directory (a file is in the way"},
  };
  if (::geteuid() != 0) {  // root may write whatever the mode bits say
    fs::create_directories(d / "ro");
    fs::permissions(d / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    cases.push_back({"checkpoint.dir=" + (d / "ro/ckpt"), "checkpoint.dir " + (d / "ro/ckpt") + ": Permission denied"});
  }
  for (const auto& [set, expect] : cases) {
    const auto r = run_command(train(d / "t.yaml", "--set " + set));
    EXPECT_EQ(r.exit_code, 2) << set << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(expect)) << set;
  }
  const auto two = run_command(test::mpirun(2) + train(d / "t.yaml", "--set checkpoint.dir=/proc/neftune-ckpt"));
  EXPECT_EQ(two.exit_code, 2) << two.output;
  EXPECT_THAT(two.output, HasSubstr("[r1] [error] checkpoint.dir /proc/neftune-ckpt: "));
  EXPECT_FALSE(fs::exists(d / "out/metrics.jsonl"));
}

}  // namespace
}  // namespace neftune
