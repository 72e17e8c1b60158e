// Records -> token sequences with their loss targets.
//
// An example is a token sequence and, per token, whether it is a target: position t-1 predicts ids[t],
// and that prediction has a loss iff train[t]. Instruction records without a chat template (the Alpaca
// prompt) train on the response and EOS; conversations (chat_examples.h) on what data.train_on names.
//
// Alpaca sequences are BOS + prompt + response + EOS. Over data.max_seq_len (too_long: truncate): the
// prompt is cut first, from its start (after BOS): the preamble, then the instruction/input, so what is
// kept is the end of the prompt nearest the response; the template tail "\n\n### Response:\n" is never
// cut. Only when the response alone does not fit after BOS + that tail is the response cut at its end
// (and then it has no EOS).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/train_config.h"
#include "trainer/data/chat_template.h"
#include "trainer/data/records.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::data {

struct Example {
  std::vector<int32_t> ids;    // the tokens (Alpaca: BOS prompt response [EOS])
  std::vector<uint8_t> train;  // one per id: 1 = ids[t] is a target (predicted at position t-1)
  // Positions with a loss. ids[0] is never one: nothing predicts it.
  int64_t n_targets() const;
  // The Alpaca layout: the first n ids (BOS + prompt) are context, every later one a target.
  void set_prompt_length(int64_t n);
};

struct TokenizeStats {
  int64_t truncated_prompt = 0;    // prompt shortened, response whole
  int64_t truncated_response = 0;  // response cut too (no EOS)
  int64_t skipped_too_long = 0;
  int64_t boundary_retokenized = 0;  // prompt+response did not tokenize as prompt followed by response
  int64_t conversations = 0;         // examples made from conversations
  int64_t dropped_turns = 0;         // conversations that lost early exchanges and fit whole otherwise
  int64_t cut_last_turn = 0;         // conversations cut into their last exchange
  int64_t skipped_malformed = 0;     // conversations the chat template cannot render (on_malformed: skip)
};

// How records become examples. Without a chat template instruction records use the Alpaca prompt and a
// conversation is an error; with one, instruction records become one-turn conversations (user =
// instruction, plus "\n\n" + input when there is one; assistant = output), except under the alpaca
// template, which keeps the Alpaca prompt (with its input section) exactly.
struct TokenizeOptions {
  int64_t max_seq_len = 512;
  config::TooLong too_long = config::TooLong::truncate;
  std::optional<ChatTemplate> chat_template;
  config::TrainOn train_on = config::TrainOn::assistant;
  config::OnMalformed on_malformed = config::OnMalformed::error;
};

// `source` names the data in errors ("data/train.json", "built-in"). `stop`, when given, is asked every few
// hundred records; when it says yes, tokenizing gives up with StopRequested.
std::vector<Example> make_examples(const std::vector<Record>& records, const tok::Tokenizer& tok,
                                   const TokenizeOptions& options, const std::string& source,
                                   TokenizeStats* stats = nullptr, const std::function<bool()>& stop = {});
// Instruction records with the Alpaca prompt.
std::vector<Example> make_examples(const std::vector<Record>& records, const tok::Tokenizer& tok, int64_t max_seq_len,
                                   config::TooLong too_long, const std::string& source, TokenizeStats* stats = nullptr,
                                   const std::function<bool()>& stop = {});

// The prompt ids (BOS + template) a model is given at generation time for an instruction.
std::vector<int32_t> prompt_ids(const tok::Tokenizer& tok, const std::string& instruction, const std::string& input);

}  // namespace neftune::data
