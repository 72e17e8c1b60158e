// The chat template of a model or tokenizer directory: its chat_template.jinja, else the chat_template of
// its tokenizer_config.json (a string, or HF's list of named templates: the one named "default"),
// recognised as a built-in family (chat_template.h) with the directory's bos_token / eos_token.
#pragma once

#include <optional>
#include <string>

#include "trainer/data/chat_template.h"

namespace neftune::data {

// `dir`: the directory, or a file in it (tokenizer.json). UserError naming `key` (data.chat_template,
// --template) and the choices when it cannot tell: no such directory, no template in it, or a template of
// no built-in family.
ChatTemplate load_chat_template(const std::string& dir, const std::string& key);

// `name` is auto or a family name (chat_family_names()): auto loads from `dir` (nullopt: an error naming
// `key`), a family is that family's built-in template.
ChatTemplate resolve_chat_template(const std::string& name, const std::optional<std::string>& dir,
                                   const std::string& key);

}  // namespace neftune::data
