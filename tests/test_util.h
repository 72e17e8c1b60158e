// Shared test helpers: fixture paths (skip cleanly when ../shared is absent), temp dirs, running the
// neftune binary.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/train_config.h"
#include "trainer/data/batch.h"
#include "trainer/model/llama_config.h"

namespace neftune::test {

// ../shared (or $NEFTUNE_SHARED); nullopt when absent.
std::optional<std::string> shared_dir();
// The path of a fixture under shared_dir()/fixtures, or nullopt.
std::optional<std::string> fixture(const std::string& relative);

// True when $NEFTUNE_REQUIRE_REFERENCES is 1 (.ci/run sets it where ../shared exists): then a missing
// fixture fails its test instead of skipping it.
bool references_required();

// The end of the message of a test skipped for a missing fixture. A test binary in which such a skip
// happened and nothing failed exits with kFixtureSkipExit (tests/test_main.cpp), which ctest counts as
// skipped (SKIP_RETURN_CODE in cmake/NeftuneHelpers.cmake): not passed, and a failure elsewhere in the
// binary still fails it.
inline constexpr const char* kFixtureAbsent = "not found (../shared absent)";
inline constexpr int kFixtureSkipExit = 77;

// A missing fixture skips the test (see kFixtureAbsent), or fails it when references are required.
#define NEFTUNE_REQUIRE_FIXTURE(var, rel)                                                                    \
  auto var##_opt = ::neftune::test::fixture(rel);                                                            \
  if (!var##_opt && ::neftune::test::references_required())                                                  \
    FAIL() << "fixture " << (rel) << " not found and NEFTUNE_REQUIRE_REFERENCES=1 (is ../shared complete?)"; \
  if (!var##_opt) GTEST_SKIP() << "fixture " << (rel) << " " << ::neftune::test::kFixtureAbsent;             \
  const std::string var = std::move(*var##_opt)

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};
// Runs a shell command line, capturing output.
CommandResult run_command(const std::string& command);
// The neftune binary ($NEFTUNE_BIN, set by ctest).
std::string neftune_bin();
// "mpirun --oversubscribe --bind-to none [--allow-run-as-root] -np N " (root needs the flag).
std::string mpirun(int np);

// A 2-layer, d=32 random-init model (untied head) trained on 40 built-in samples, micro-batch 2, NEFTune
// on, weight decay on, quiet logs; `extra` are more --set overrides (accumulation, steps, sharding...).
config::TrainConfig small_train_config(const std::string& output_dir, const std::vector<std::string>& extra);

// A 2-layer LLaMA, d = 32, 4 heads over 2 KV heads, MLP 48, 64 positions, BOS 256, EOS 257: a
// `vocab` far wider than d, as in real models (the test tokens stay below 256).
model::LlamaConfig small_llama(int64_t vocab, bool tied);

// Samples of the given lengths, token ids in [0, 256) drawn from `seed`; the first third of each is
// prompt, without loss.
std::vector<data::Example> random_examples(uint64_t seed, const std::vector<int64_t>& lengths);

// Two micro-batches of two right-padded samples each (random_examples of lengths 40, 23 and 31, 12;
// pad id 258).
std::vector<data::Batch> two_padded_micro_batches(uint64_t seed);

void write_file(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);
// What fn throws (what()), or "" when it returns.
std::string error_of(const std::function<void()>& fn);
nlohmann::json read_json(const std::string& path);
std::vector<nlohmann::json> read_jsonl(const std::string& path);

}  // namespace neftune::test
