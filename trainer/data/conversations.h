// Conversation records: ShareGPT ({"conversations": [{"from": "human" | "gpt" | "system", "value": ...}]},
// "user" / "assistant" accepted as `from` too) and OpenAI messages ({"messages": [{"role": "system" |
// "user" | "assistant", "content": ...}]}), and the one-turn conversation an instruction record becomes
// under a chat template. Parsing says what is wrong with a record ("turn 3: ..."); the reader adds the
// file and record. Errors never quote the record's text (a daemon job may read a file its submitter
// cannot).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "config/enums.h"
#include "trainer/data/chat_template.h"
#include "trainer/data/records.h"

namespace neftune::data {

// The conversation format a record is in (it has "messages" or "conversations"), or nullopt.
std::optional<config::DataFormat> conversation_format(const nlohmann::json& record);

// The turns of a sharegpt or messages record into `out`; "" on success, else what is wrong, naming the
// turn (1-based, as in the file). A system turn with empty content is dropped (no system turn). With
// `training`, the conversation must also be one to learn from: an optional system turn first, then user
// and assistant turns alternating, starting with user and ending with assistant, none of them empty.
std::string parse_conversation(const nlohmann::json& record, config::DataFormat format, bool training,
                               std::vector<ChatMessage>& out);

// An instruction record as the one-turn conversation TRL makes of it: user = instruction, plus "\n\n" +
// input when the input is not empty; assistant = output.
Conversation instruction_conversation(const Record& r);

}  // namespace neftune::data
