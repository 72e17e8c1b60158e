#include "trainer/run/datasets.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "config/config.h"
#include "trainer/data/builtin_tasks.h"
#include "trainer/data/chat_template_load.h"
#include "trainer/run/stop_signal.h"

namespace neftune::run {

namespace {

// The records of a data.train / data.eval file; the key is named when the path is not a file.
std::vector<data::Record> read_key(const std::string& key, const std::string& path, const config::DataConfig& dc,
                                   data::ReadStats* stats) {
  if (std::filesystem::is_directory(path)) {
    throw config::ConfigError("config: " + key + ": " + path +
                              " is a directory; name a JSON or JSONL data file (e.g. " + key + ": " + path +
                              "/train.json)");
  }
  return data::read_records(path, dc.format, dc.on_malformed, stats);
}

bool has_conversations(const std::vector<data::Record>& records) {
  return std::any_of(records.begin(), records.end(), [](const data::Record& r) { return r.is_conversation(); });
}

// The chat template data.chat_template names; auto reads the tokenizer's directory only when the data has
// conversations (instruction records keep the Alpaca prompt).
std::optional<data::ChatTemplate> chat_template_for(const config::TrainConfig& cfg, bool conversations) {
  if (cfg.data.chat_template == config::ChatTemplateName::auto_detect && !conversations) return std::nullopt;
  const std::optional<std::string> dir = cfg.tokenizer.path ? cfg.tokenizer.path : cfg.model.path;
  return data::resolve_chat_template(std::string(config::to_string(cfg.data.chat_template)), dir, "data.chat_template");
}

}  // namespace

Datasets load_datasets(const config::TrainConfig& cfg, const tok::Tokenizer& tok) {
  Datasets d;
  const auto& dc = cfg.data;
  std::vector<data::Record> train_records;
  if (dc.train) {
    train_records = read_key("data.train", *dc.train, dc, &d.train_read);
  } else {
    d.builtin = true;
    train_records = data::make_builtin_tasks(dc.builtin_train_size, data::Split::train);
  }
  if (dc.eval) {
    d.eval_records = read_key("data.eval", *dc.eval, dc, &d.eval_read);
  } else if (!dc.train && dc.builtin_eval_size > 0) {
    d.eval_records = data::make_builtin_tasks(dc.builtin_eval_size, data::Split::held_out);
  }
  if (dc.eval_max_samples > 0 && static_cast<int64_t>(d.eval_records.size()) > dc.eval_max_samples)
    d.eval_records.resize(static_cast<size_t>(dc.eval_max_samples));

  data::TokenizeOptions opts;
  opts.max_seq_len = dc.max_seq_len;
  opts.too_long = dc.too_long;
  opts.train_on = dc.train_on;
  opts.on_malformed = dc.on_malformed;
  opts.chat_template = chat_template_for(cfg, has_conversations(train_records) || has_conversations(d.eval_records));
  d.chat_template = opts.chat_template;
  d.train_on = dc.train_on;
  const auto stop = [] { return stop_requested() != 0; };
  d.train = data::make_examples(train_records, tok, opts, dc.train ? *dc.train : std::string("built-in data"),
                                &d.train_tok, stop);
  if (!d.eval_records.empty()) {
    d.eval = data::make_examples(d.eval_records, tok, opts, dc.eval ? *dc.eval : std::string("built-in held-out data"),
                                 &d.eval_tok, stop);
  }
  return d;
}

void check_global_batch(const config::TrainConfig& cfg, int world_size, const Datasets& d) {
  const auto& t = cfg.train;
  const int64_t examples = static_cast<int64_t>(d.train.size());
  int64_t global = 0;
  const bool overflow = __builtin_mul_overflow(t.micro_batch_size, t.accumulation_steps, &global) ||
                        __builtin_mul_overflow(global, static_cast<int64_t>(world_size), &global);
  if (!overflow && global <= examples) return;
  throw config::ConfigError(
      "config: train.micro_batch_size " + std::to_string(t.micro_batch_size) + " x train.accumulation_steps " +
      std::to_string(t.accumulation_steps) + " x " + std::to_string(world_size) +
      " rank(s) = " + (overflow ? std::string("more than 2^63") : std::to_string(global)) +
      " samples per step (the global batch) exceeds the " + std::to_string(examples) +
      " training examples: lower train.micro_batch_size or train.accumulation_steps (or use fewer ranks)" +
      (d.builtin ? ", or raise data.builtin_train_size" : ", or add training data"));
}

std::string describe(const Datasets& d) {
  int64_t tokens = 0, targets = 0;
  for (const auto& e : d.train) {
    tokens += static_cast<int64_t>(e.ids.size());
    targets += e.n_targets();
  }
  std::ostringstream os;
  os << (d.builtin ? "built-in tasks: " : "") << d.train.size() << " train examples (" << tokens << " tokens, "
     << targets << " with loss), " << d.eval.size() << " held-out";
  if (d.train_read.skipped_malformed) os << "; skipped " << d.train_read.skipped_malformed << " malformed records";
  if (d.train_tok.truncated_prompt + d.train_tok.truncated_response) {
    os << "; truncated " << d.train_tok.truncated_prompt << " prompts and " << d.train_tok.truncated_response
       << " responses to data.max_seq_len";
  }
  if (d.train_tok.skipped_too_long) os << "; skipped " << d.train_tok.skipped_too_long << " too long";
  const data::TokenizeStats& c = d.train_tok;
  if (c.conversations && d.chat_template) {
    os << "; " << c.conversations << " conversations (" << data::to_string(d.chat_template->family)
       << " template, loss on " << config::to_string(d.train_on) << ")";
    if (c.dropped_turns)
      os << "; dropped early turns of " << c.dropped_turns << " conversations to fit data.max_seq_len";
    if (c.cut_last_turn) os << "; cut " << c.cut_last_turn << " conversations into their last exchange";
  }
  if (c.skipped_malformed)
    os << "; skipped " << c.skipped_malformed << " conversations the chat template cannot render";
  return os.str();
}

}  // namespace neftune::run
