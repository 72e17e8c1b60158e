// The config tree: defaults, parsing errors that name the key/line and a fix, --set, dump round trip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "config/config.h"
#include "config/edit_distance.h"
#include "config/job.h"
#include "config/size_limit.h"
#include "tests/test_util.h"

namespace neftune::config {
namespace {

using ::testing::HasSubstr;

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(yaml, "exp.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsMatchTheDesignContract) {
  const TrainConfig c = parse_config("", "empty");
  EXPECT_EQ(c.output_dir, "runs/quickstart");
  EXPECT_FALSE(c.model.path.has_value());
  EXPECT_EQ(c.model.dtype, DType::fp32);
  EXPECT_EQ(c.tokenizer.kind, TokenizerKind::byte);
  EXPECT_EQ(c.data.format, DataFormat::alpaca);
  EXPECT_EQ(c.data.max_seq_len, 512);
  EXPECT_DOUBLE_EQ(*c.neftune.alpha, 5.0);
  EXPECT_EQ(c.train.seed, 42);
  EXPECT_EQ(c.train.micro_batch_size, 4);
  EXPECT_EQ(*c.train.max_steps, 200);
  EXPECT_DOUBLE_EQ(c.train.lr, 2.0e-5);
  EXPECT_DOUBLE_EQ(c.train.warmup_ratio, 0.03);
  EXPECT_EQ(c.train.schedule, Schedule::cosine);
  EXPECT_EQ(c.train.loss_normalization, LossNormalization::token);
  EXPECT_EQ(c.distributed.backend, Backend::auto_select);
  EXPECT_EQ(c.distributed.sharding, Sharding::full);
  EXPECT_TRUE(c.distributed.prefetch);
  EXPECT_EQ(c.checkpoint.keep_last, 2);
  EXPECT_EQ(c.checkpoint.resume, "auto");
}

TEST(Config, ParsesNestedValues) {
  const TrainConfig c = parse_config(
      "model: {path: /m, dtype: bf16}\nneftune: {alpha: null}\ntrain:\n  lr: 1e-4\n  epochs: 3\n  max_steps: null\n",
      "x");
  EXPECT_EQ(*c.model.path, "/m");
  EXPECT_EQ(c.model.dtype, DType::bf16);
  EXPECT_FALSE(c.neftune.alpha.has_value());
  EXPECT_FALSE(neftune_enabled(c));
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-4);
  EXPECT_DOUBLE_EQ(*c.train.epochs, 3.0);
  EXPECT_FALSE(c.train.max_steps.has_value());
}

TEST(Config, UnknownKeyNamesItAndTheNearestValidOne) {
  EXPECT_THAT(error_of("train:\n  lrr: 1\n"),
              HasSubstr("exp.yaml:2: unknown key 'train.lrr' (did you mean 'train.lr'?)"));
  // A key in the wrong section points to where it lives.
  EXPECT_THAT(error_of("train: {alpha: 5}\n"), HasSubstr("did you mean 'neftune.alpha'?"));
  EXPECT_THAT(error_of("trian: {lr: 1}\n"), HasSubstr("unknown key 'trian'"));
}

TEST(Config, TypeErrorsNameTheKeyAndLine) {
  EXPECT_THAT(error_of("output_dir: x\ntrain:\n  micro_batch_size: many\n"),
              HasSubstr("exp.yaml:3: train.micro_batch_size: expected an integer, got 'many'"));
  EXPECT_THAT(error_of("train: {lr: fast}\n"), HasSubstr("train.lr: expected a finite number"));
  EXPECT_THAT(error_of("distributed: {sharding: zero3}\n"),
              HasSubstr("distributed.sharding: expected one of full | grad_op | none, got 'zero3'"));
  EXPECT_THAT(error_of("distributed: {prefetch: maybe}\n"), HasSubstr("expected true or false"));
  EXPECT_THAT(error_of("train: 5\n"), HasSubstr("train: expected a mapping"));
}

TEST(Config, DuplicateKeysAreErrors) {
  EXPECT_THAT(error_of("train: {lr: 1}\nmodel: {}\ntrain: {seed: 1}\n"),
              HasSubstr("exp.yaml:3: duplicate key 'train'"));
  EXPECT_THAT(error_of("train:\n  lr: 1\n  lr: 2\n"), HasSubstr("duplicate key 'train.lr'"));
}

TEST(Config, BrokenYamlNamesTheLine) {
  EXPECT_THAT(error_of("train:\n  lr: [1, 2\n  seed: 3\n"), HasSubstr("exp.yaml:"));
  EXPECT_THAT(error_of("train:\n  lr: [1, 2\n  seed: 3\n"), HasSubstr("invalid YAML"));
}

TEST(Config, NegativeAndInconsistentValuesAreRejectedWithAFix) {
  EXPECT_THAT(error_of("train: {micro_batch_size: -2}\n"), HasSubstr("train.micro_batch_size: must be >= 1 (got -2)"));
  EXPECT_THAT(error_of("data: {max_seq_len: 0}\n"), HasSubstr("data.max_seq_len: must be >= 8"));
  EXPECT_THAT(error_of("neftune: {alpha: -1}\n"), HasSubstr("neftune.alpha: must be >= 0"));
  EXPECT_THAT(error_of("train: {max_steps: null, epochs: null}\n"), HasSubstr("set train.max_steps or train.epochs"));
  EXPECT_THAT(error_of("model: {init: {dim: 100, n_heads: 3}}\n"), HasSubstr("model.init.dim: must be divisible"));
  EXPECT_THAT(error_of("train: {warmup_ratio: 1.5}\n"), HasSubstr("train.warmup_ratio: must be in [0, 1)"));
}

// Values that would size a model, a batch, a generated dataset or a thread pool beyond any machine are
// refused by validation, before anything is allocated; each message names the key and the bound.
TEST(Config, AbsurdSizesAreRefusedWithTheKeyAndTheBound) {
  EXPECT_THAT(error_of("train: {micro_batch_size: 1e9}\n"),
              HasSubstr("train.micro_batch_size: must be <= 1048576 (got 1000000000)"));
  EXPECT_THAT(error_of("train: {accumulation_steps: 2000000}\n"),
              HasSubstr("train.accumulation_steps: must be <= 1048576"));
  EXPECT_THAT(error_of("model: {init: {n_layers: 1e6}}\n"),
              HasSubstr("model.init.n_layers: must be <= 4096 (got 1000000)"));
  EXPECT_THAT(error_of("model: {init: {dim: 1e6, n_heads: 4}}\n"), HasSubstr("model.init.dim: must be <= 65536"));
  EXPECT_THAT(error_of("model: {init: {hidden_dim: 1e9}}\n"), HasSubstr("model.init.hidden_dim: must be <= 1048576"));
  EXPECT_THAT(error_of("model: {init: {max_seq_len: 1e10}}\n"),
              HasSubstr("model.init.max_seq_len: must be <= 1073741824"));
  EXPECT_THAT(error_of("data: {builtin_train_size: 1e9}\n"), HasSubstr("data.builtin_train_size: must be <= 4194304"));
  EXPECT_THAT(error_of("train: {threads: 1e7}\n"), HasSubstr("train.threads: must be <= 1048576"));
  EXPECT_THAT(error_of("train: {epochs: 1e300, max_steps: null}\n"), HasSubstr("train.epochs: must be in (0, 1e+06]"));
  // At the bounds, and what only needs capping or lazily sized tables, is accepted.
  EXPECT_EQ(error_of("train: {micro_batch_size: 1048576, threads: 100000}\nmodel: {init: {max_seq_len: 1e9}}\n"), "");
  EXPECT_EQ(error_of("model: {init: {dim: 65536, n_heads: 64, n_kv_heads: 64, n_layers: 4096, hidden_dim: 1048576}}\n"),
            "");
}

TEST(Config, SetOverridesAndCreatesSections) {
  const TrainConfig c =
      parse_config("train: {lr: 1e-3}\n", "x", {"train.lr=5e-4", "model.init.dim=64", "neftune.alpha=null"});
  EXPECT_DOUBLE_EQ(c.train.lr, 5e-4);
  EXPECT_EQ(c.model.init.dim, 64);
  EXPECT_FALSE(c.neftune.alpha.has_value());
  EXPECT_THAT(error_of("", {"train.lrr=1"}), HasSubstr("--set train.lrr: unknown key"));
  EXPECT_THAT(error_of("", {"train.lr=abc"}), HasSubstr("--set train.lr: train.lr: expected a finite number"));
  EXPECT_THAT(error_of("", {"noequals"}), HasSubstr("expected key=value"));
}

TEST(Config, DumpRoundTripsToTheSameConfig) {
  const TrainConfig c =
      parse_config("output_dir: \"out dir/x\"\nmodel: {path: /a/b}\ntrain: {lr: 3.3e-5, epochs: 1.5}\n", "x");
  const std::string dumped = dump_config(c);
  const TrainConfig back = parse_config(dumped, "dumped");
  EXPECT_EQ(dump_config(back), dumped);
  EXPECT_EQ(config_hash(back), config_hash(c));
  EXPECT_EQ(back.output_dir, "out dir/x");
  EXPECT_DOUBLE_EQ(back.train.lr, 3.3e-5);
  EXPECT_NE(config_hash(parse_config("train: {lr: 3.4e-5}", "y")), config_hash(c));
}

TEST(Config, EveryKeyIsDescribedWithItsDefault) {
  const std::string help = describe_keys();
  for (const auto& key : all_keys()) EXPECT_THAT(help, HasSubstr(key)) << key;
  EXPECT_THAT(help, HasSubstr("train.lr"));
  EXPECT_THAT(help, HasSubstr("2e-05"));
  EXPECT_GE(all_keys().size(), 50u);
}

// The keys a resumed run may change, listed here (the checkpoint, logging and distributed sections whole)
// so that a flag added to or dropped from TrainConfig::visit() fails this test. Everything else changes
// what is trained.
TEST(Config, ExactlyTheListedKeysMayChangeOnResume) {
  std::set<std::string> expected = {"output_dir",
                                    "train.max_steps",
                                    "train.epochs",
                                    "train.eval_every_steps",
                                    "train.threads",
                                    "train.micro_batch_size",
                                    "train.accumulation_steps",
                                    "train.activation_checkpointing",
                                    "train.loss_chunk_tokens",
                                    "data.eval",
                                    "data.eval_max_samples",
                                    "data.packing",
                                    "data.pack_length"};
  size_t section_keys = 0;
  for (const auto& key : all_keys()) {
    for (const std::string section : {"checkpoint.", "logging.", "distributed."})
      if (key.rfind(section, 0) == 0) section_keys += expected.insert(key).second;
  }
  EXPECT_GE(section_keys, 15u);  // 4 checkpoint + 4 logging + 7 distributed keys today
  std::set<std::string> flagged;
  for (const auto& key : all_keys())
    if (may_change_on_resume(key)) flagged.insert(key);
  EXPECT_EQ(flagged, expected);

  // Unknown keys (even under a flagged section, or sharing a flagged key's prefix) and section names.
  for (const char* key : {"", "nope", "train.lrr", "checkpoint.nope", "data.evaluate", "checkpoint", "train"})
    EXPECT_FALSE(may_change_on_resume(key)) << key;

  // --help marks exactly the flagged keys.
  const std::string marker = " (may change on resume)";
  std::istringstream help(describe_keys());
  size_t marked = 0;
  for (std::string line; std::getline(help, line);) {
    const std::string key = line.substr(2, line.find(' ', 2) - 2);
    const bool has_marker =
        line.size() > marker.size() && line.compare(line.size() - marker.size(), marker.size(), marker) == 0;
    EXPECT_EQ(has_marker, expected.count(key) == 1) << line;
    marked += has_marker;
  }
  EXPECT_EQ(marked, expected.size());
}

TEST(Config, EditDistanceCountsSingleCharacterEdits) {
  EXPECT_EQ(detail::edit_distance("kitten", "sitting"), 3u);  // 2 substitutions + 1 insertion
  EXPECT_EQ(detail::edit_distance("", "abc"), 3u);
  EXPECT_EQ(detail::edit_distance("abc", ""), 3u);
  EXPECT_EQ(detail::edit_distance("train.lr", "train.lr"), 0u);
  EXPECT_EQ(detail::edit_distance("train.lrr", "train.lr"), 1u);
  EXPECT_EQ(detail::edit_distance("ab", "ba"), 2u);  // a transposition is two edits
}

// A 48-59 MB config took 45-59 s and 5-6 GB before its error. A file over kMaxConfigBytes is refused
// before YAML sees it, naming its size and the limit (and `neftune train` exits 2); one exactly at the
// limit is read.
TEST(Config, AConfigFileOverTheSizeLimitIsRefusedBeforeParsing) {
  test::TempDir d;
  const std::string comment = "# " + std::string(1021, 'x') + "\n";  // 1 KiB
  auto write_config = [&](const std::string& path, size_t bytes) {
    const std::string body = "train: {lr: 1.0e-3}\n";
    std::ofstream out(path, std::ios::binary);
    std::string text(bytes - body.size(), '\n');
    for (size_t at = 0; at + comment.size() <= text.size(); at += comment.size())
      text.replace(at, comment.size(), comment);
    out << text << body;
  };
  write_config(d / "at_limit.yaml", kMaxConfigBytes);
  EXPECT_DOUBLE_EQ(load_config(d / "at_limit.yaml").train.lr, 1.0e-3);
  write_config(d / "over.yaml", kMaxConfigBytes + 1);
  write_config(d / "big.yaml", size_t{48} << 20);
  for (const auto& [file, size] :
       {std::pair{"over.yaml", "1.0 MiB (1048577 bytes)"}, std::pair{"big.yaml", "48 MiB"}}) {
    std::string error;
    try {
      load_config(d / file);
    } catch (const ConfigError& e) {
      error = e.what();
    }
    EXPECT_THAT(error, HasSubstr(d / file + ": config file is " + size + ", over the limit of 1 MiB"));
  }
  const auto train = test::run_command("timeout 60 " + test::neftune_bin() + " train " + (d / "big.yaml"));
  EXPECT_EQ(train.exit_code, 2) << train.output;
  EXPECT_THAT(train.output, HasSubstr("big.yaml: config file is 48 MiB, over the limit of 1 MiB"));
}

// Sweep combinations are counted without being made (and without overflowing), and a sweep over the
// limit is refused before any combination is made or validated.
TEST(Config, SweepCombinationsAreCountedBeforeTheyAreMade) {
  const JobSpec job = parse_job("sweep: {train.seed: [1, 2, 3], neftune.alpha: [0, 5]}\n", "job.yaml", 6);
  EXPECT_EQ(job.combination_count(), 6);
  EXPECT_EQ(job.combinations().size(), 6u);  // the count agrees with the expansion
  std::string keys;                          // 20 keys x 10 values: 10^20 combinations, over INT64_MAX
  for (int k = 0; k < 20; ++k)
    keys += (k ? ", " : "") + std::string("k") + std::to_string(k) + ": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]";
  std::string error;
  try {
    parse_job("sweep: {" + keys + "}\n", "job.yaml", 256);
  } catch (const ConfigError& e) {
    error = e.what();
  }
  EXPECT_THAT(error,
              HasSubstr("job.yaml: sweep: 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 x "
                        "10 x 10 x 10 x 10 x 10 values make more than 9.2e18 jobs, over the limit of 256 per sweep"));
  try {
    parse_job("sweep: {train.seed: [1, 2, 3], neftune.alpha: [0, 5]}\n", "job.yaml", 5);
    error.clear();
  } catch (const ConfigError& e) {
    error = e.what();
  }
  EXPECT_THAT(error, HasSubstr("sweep: 3 x 2 values make 6 jobs, over the limit of 5 per sweep"));
}

}  // namespace
}  // namespace neftune::config
