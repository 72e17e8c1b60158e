// Loading, validating, dumping and describing a TrainConfig. YAML is touched only in config/*.cpp.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "config/errors.h"
#include "config/train_config.h"

namespace neftune::config {

// A user mistake in a config: the message names the source (file:line or --set), the key and a fix.
class ConfigError : public UserError {
 public:
  using UserError::UserError;
};

// Reads YAML from `path`, applies `overrides` ("a.b=value", as given to --set), parses and validates.
TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The same from text; `source` names it in errors (a path, "POST body", ...).
TrainConfig parse_config(const std::string& yaml_text, const std::string& source,
                         const std::vector<std::string>& overrides = {});

// Checks ranges and cross-field rules; throws ConfigError naming the key and how to fix it.
void validate(const TrainConfig& cfg);

// The absolute upper bounds validate() enforces: far above any real run, low enough that nothing sized
// by such a value (a model, a batch, a generated dataset, a thread pool) is attempted. Bounds that
// depend on the run (the global batch against the training examples, the model against the memory)
// are checked where those are known.
inline constexpr int64_t kMaxModelDim = 1 << 16;        // model.init.dim
inline constexpr int64_t kMaxLayers = 4096;             // model.init.n_layers
inline constexpr int64_t kMaxHiddenDim = 1 << 20;       // model.init.hidden_dim
inline constexpr int64_t kMaxPositions = 1 << 30;       // model.init.max_seq_len
inline constexpr int64_t kMaxBuiltinSamples = 1 << 22;  // data.builtin_train_size, data.builtin_eval_size
inline constexpr int64_t kMaxBatch = 1 << 20;           // train.micro_batch_size, train.accumulation_steps
inline constexpr double kMaxEpochs = 1e6;               // train.epochs
inline constexpr int64_t kMaxThreads = 1 << 20;         // train.threads (more than the cores is capped, with a warning)

// The effective config as YAML, every key present, each with its one-line doc as a comment.
std::string dump_config(const TrainConfig& cfg);

// Every key with its value as YAML text, in tree order.
std::vector<std::pair<std::string, std::string>> key_values(const TrainConfig& cfg);

// "key: old -> new" for every key whose value differs between a and b.
std::vector<std::string> differing_keys(const TrainConfig& a, const TrainConfig& b);

// FNV-1a 64 of dump_config(): equal configs hash equal on every rank.
uint64_t config_hash(const TrainConfig& cfg);

// "key  default  doc" lines for every key, for `neftune train --help`.
std::string describe_keys();

// Every dotted key ("train.lr", ...), for suggestions and tests.
std::vector<std::string> all_keys();

// The valid key closest to `key` (same leaf name first, then edit distance); empty if none is close.
std::string nearest_key(const std::string& key);

// Whether the dotted key ("train.max_steps") may differ between a run and the checkpoint it resumes from:
// its Resume flag in TrainConfig::visit() (or its section's). False for unknown keys and section names.
bool may_change_on_resume(const std::string& dotted_key);

}  // namespace neftune::config
