// One conversation -> one training example: rendered with the chat template (chat_template.h), encoded
// with its loss mask (chat_encode.h), the targets data.train_on names.
//
// Over data.max_seq_len (too_long: truncate): whole exchanges (a user turn and the assistant's reply) are
// dropped from the start, the system turn kept, fewest first, until the rest fits. When the last exchange
// alone does not fit, the sequence is cut at its end (as TRL truncates); a cut that leaves no target
// skips the conversation.
#pragma once

#include <optional>
#include <string>

#include "config/enums.h"
#include "trainer/data/chat_template.h"
#include "trainer/data/examples.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::data {

// nullopt when the conversation is skipped (too long under too_long: skip, or nothing left to learn after
// a cut); counted in `stats`. `where` names the record in errors ("data/chat.jsonl: record 12 (line 13)"):
// DataError over max_seq_len under too_long: error, UserError for what the template cannot render.
std::optional<Example> conversation_example(const tok::Tokenizer& tok, const ChatTemplate& t, config::TrainOn train_on,
                                            const Conversation& c, int64_t max_seq_len, config::TooLong too_long,
                                            const std::string& where, TokenizeStats& stats);

}  // namespace neftune::data
