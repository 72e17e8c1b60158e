// `neftune eval`: held-out loss of an HF-format model, and for generated answers exact-match accuracy
// (built-in tasks) and mean response length (the NEFTune paper reports that noise makes answers longer).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trainer/data/examples.h"
#include "trainer/infer/generate.h"
#include "trainer/model/llama.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::run {

struct EvalReport {
  double loss = 0;  // mean token cross-entropy on the response tokens
  int64_t examples = 0;
  int64_t target_tokens = 0;
  int64_t generated = 0;              // examples answered by generation
  std::optional<double> exact_match;  // fraction of generated answers equal to the reference (trimmed)
  double mean_response_tokens = 0;    // generated tokens before EOS
  double mean_response_chars = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> per_task;  // task -> (correct, total)
};

// Loss over `examples` in batches of `batch_size`.
void eval_loss(const model::LlamaModel& model, const std::vector<data::Example>& examples, int32_t pad_id,
               int64_t batch_size, EvalReport& report);

// Generates an answer for each record (Alpaca template) and scores it. `with_exact_match` compares to
// the reference output.
void eval_generation(const model::LlamaModel& model, const tok::Tokenizer& tok,
                     const std::vector<data::Record>& records, const GenerateOptions& options, bool with_exact_match,
                     bool builtin_tasks, EvalReport& report);

}  // namespace neftune::run
