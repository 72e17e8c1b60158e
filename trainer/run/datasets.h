// The training and held-out examples a run uses: from data.train / data.eval files, or the built-in
// task generator and its held-out split when data.train is null. Conversations are rendered with
// data.chat_template (auto: the template of tokenizer.path / model.path, read only when there are
// conversations or a template is named).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/train_config.h"
#include "trainer/data/examples.h"
#include "trainer/data/records.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::run {

struct Datasets {
  std::vector<data::Example> train, eval;
  std::vector<data::Record> eval_records;  // the held-out records (for exact-match on the built-in split)
  bool builtin = false;
  data::ReadStats train_read, eval_read;
  data::TokenizeStats train_tok, eval_tok;
  std::optional<data::ChatTemplate> chat_template;  // the template conversations were rendered with
  config::TrainOn train_on = config::TrainOn::assistant;
};

Datasets load_datasets(const config::TrainConfig& cfg, const tok::Tokenizer& tok);

// Throws ConfigError when a step's samples, train.micro_batch_size x train.accumulation_steps x
// `world_size` (computed without overflow), exceed the training examples: a step would repeat samples,
// and a huge value would only fill memory.
void check_global_batch(const config::TrainConfig& cfg, int world_size, const Datasets& d);

// One-line summary for the log.
std::string describe(const Datasets& d);

}  // namespace neftune::run
