#include "trainer/run/datasets.h"

#include <sstream>

#include "trainer/data/builtin_tasks.h"

namespace neftune::run {

Datasets load_datasets(const config::TrainConfig& cfg, const tok::Tokenizer& tok) {
  Datasets d;
  const auto& dc = cfg.data;
  std::vector<data::Record> train_records;
  if (dc.train) {
    train_records = data::read_records(*dc.train, dc.format, dc.on_malformed, &d.train_read);
  } else {
    d.builtin = true;
    train_records = data::make_builtin_tasks(dc.builtin_train_size, data::Split::train);
  }
  d.train = data::make_examples(train_records, tok, dc.max_seq_len, dc.too_long,
                                dc.train ? *dc.train : std::string("built-in data"), &d.train_tok);
  if (dc.eval) {
    d.eval_records = data::read_records(*dc.eval, dc.format, dc.on_malformed, &d.eval_read);
  } else if (!dc.train && dc.builtin_eval_size > 0) {
    d.eval_records = data::make_builtin_tasks(dc.builtin_eval_size, data::Split::held_out);
  }
  if (dc.eval_max_samples > 0 && static_cast<int64_t>(d.eval_records.size()) > dc.eval_max_samples)
    d.eval_records.resize(static_cast<size_t>(dc.eval_max_samples));
  if (!d.eval_records.empty())
    d.eval = data::make_examples(d.eval_records, tok, dc.max_seq_len, dc.too_long,
                                 dc.eval ? *dc.eval : std::string("built-in held-out data"), &d.eval_tok);
  return d;
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
  if (d.train_tok.truncated_prompt + d.train_tok.truncated_response)
    os << "; truncated " << d.train_tok.truncated_prompt << " prompts and " << d.train_tok.truncated_response
       << " responses to data.max_seq_len";
  if (d.train_tok.skipped_too_long) os << "; skipped " << d.train_tok.skipped_too_long << " too long";
  return os.str();
}

}  // namespace neftune::run
