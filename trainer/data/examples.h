// Records -> token sequences with their loss targets.
//
// A sequence is BOS + prompt + response + EOS. Loss is only on the response and EOS: position t
// predicts ids[t+1], so targets are ids[n_prompt..end] at positions n_prompt-1..end-1.
//
// Over data.max_seq_len (too_long: truncate): the prompt is cut first, from its start (after BOS):
// the preamble, then the instruction/input, so what is kept is the end of the prompt nearest the
// response; the template tail "\n\n### Response:\n" is never cut. Only when the response alone does
// not fit after BOS + that tail is the response cut at its end (and then it has no EOS).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/train_config.h"
#include "trainer/data/records.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::data {

struct Example {
  std::vector<int32_t> ids;  // BOS prompt response [EOS]
  int32_t n_prompt = 0;      // BOS + prompt tokens
  int64_t n_targets() const { return static_cast<int64_t>(ids.size()) - n_prompt; }
};

struct TokenizeStats {
  int64_t truncated_prompt = 0;    // prompt shortened, response whole
  int64_t truncated_response = 0;  // response cut too (no EOS)
  int64_t skipped_too_long = 0;
  int64_t boundary_retokenized = 0;  // prompt+response did not tokenize as prompt followed by response
};

// `source` names the data in errors ("data/train.json", "built-in"). `stop`, when given, is asked every few
// hundred records; when it says yes, tokenizing gives up with StopRequested.
std::vector<Example> make_examples(const std::vector<Record>& records, const tok::Tokenizer& tok, int64_t max_seq_len,
                                   config::TooLong too_long, const std::string& source, TokenizeStats* stats = nullptr,
                                   const std::function<bool()>& stop = {});

// The prompt ids (BOS + template) a model is given at generation time for an instruction.
std::vector<int32_t> prompt_ids(const tok::Tokenizer& tok, const std::string& instruction, const std::string& input);

}  // namespace neftune::data
