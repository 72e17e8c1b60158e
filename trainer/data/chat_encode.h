// Rendered conversation segments -> token ids and the per-token loss mask.
//
// Ids: a special segment is its single token; each maximal run of text between special segments is
// encoded whole. That is how a tokenizer.json tokenizer encodes the whole rendered text (added tokens are
// split out first, then each piece between them is tokenized on its own), so for those the ids equal
// tok.encode(text, false): the ids HF computes for the template's text.
//
// Mask: a trained span of a run is located by encoding the run's text before it and after it: the
// targets are the tokens from the one holding the span's first byte to the one holding its last, the
// rule HF applies to a template's {% generation %} spans (return_assistant_tokens_mask). A token that
// straddles a span's edge (sentencepiece's "▁" joined to the first word of a Llama 2 reply) is trained.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/enums.h"
#include "trainer/data/chat_template.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::data {

struct EncodedChat {
  std::vector<int32_t> ids;
  std::vector<uint8_t> train;  // one per id, as Example::train: 1 = a target; train[0] is always 0
};

// The segments with the targets data.train_on names: assistant keeps the template's (every assistant
// turn's content and end-of-turn token), last_assistant only the last of those turns, all everything.
std::vector<ChatSegment> select_targets(std::vector<ChatSegment> segments, config::TrainOn train_on);

EncodedChat encode_chat(const tok::Tokenizer& tok, const ChatTemplate& t, const std::vector<ChatSegment>& segments);

// The id a special segment stands for: the tokenizer's one token for the text, else (sentencepiece and
// byte tokenizers have no token spelled "<s>") BOS or EOS when the text is the template's bos or eos.
// nullopt for the template's BOS when the tokenizer has none (Qwen). UserError when there is no such
// token: the template does not belong to this tokenizer.
std::optional<int32_t> special_id(const tok::Tokenizer& tok, const ChatTemplate& t, const std::string& text);

}  // namespace neftune::data
