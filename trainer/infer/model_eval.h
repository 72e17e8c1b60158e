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

struct EvalLossOptions {
  int64_t batch_size = 8;           // examples per forward
  bool packing = false;             // each batch's examples end to end in one row (data/packing.h)
  int64_t loss_chunk_tokens = 512;  // target positions per LM-head chunk; 0 = all at once
};

// Mean token cross-entropy over the targets of `examples`, as the trainer evaluates: logits only at
// the positions with a target, `loss_chunk_tokens` at a time, so no (batch x length x vocab) tensor
// exists; packed batches give the padded ones' loss up to rounding.
void eval_loss(const model::LlamaModel& model, const std::vector<data::Example>& examples, int32_t pad_id,
               const EvalLossOptions& options, EvalReport& report);

// Generates an answer for each record (Alpaca template) and scores it. `with_exact_match` compares to
// the reference output.
void eval_generation(const model::LlamaModel& model, const tok::Tokenizer& tok,
                     const std::vector<data::Record>& records, const GenerateOptions& options, bool with_exact_match,
                     bool builtin_tasks, EvalReport& report);

}  // namespace neftune::run
