// Conversations -> text, with the loss on what the assistant says. Each built-in template renders
// exactly the text the model family's own Jinja chat template renders (character for character; the
// fixtures' references come from HF's Jinja implementation), as segments that say which text the
// model is trained to produce: every assistant turn's content and its end-of-turn token.
//
//   llama3    Llama 3 / 3.1 / 3.2 Instruct: <|start_header_id|>role<|end_header_id|>\n\n content <|eot_id|>
//   chatml    Qwen2 / Qwen2.5: <|im_start|>role\n content <|im_end|>\n (with the family's default system turn)
//   qwen3     Qwen3: ChatML plus the empty <think> block before the assistant turns after the last user turn
//   llama2    Llama 2 chat: <s>[INST] <<SYS>>\n system \n<</SYS>>\n\n user [/INST] assistant </s>
//   mistral   Mistral Instruct v0.1/v0.2: <s>[INST] user [/INST] assistant</s>
//   alpaca    the Alpaca prompt (one user turn, one assistant turn), as `data.format: alpaca` trains it
//
// Tool calls, tool messages and reasoning_content are not supported (an error, never dropped).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace neftune::data {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

struct Conversation {
  std::vector<ChatMessage> messages;
  bool add_generation_prompt = false;  // end with the header of an assistant turn (generation)
};

// A piece of rendered text and whether its tokens are trained on (assistant content + end of turn).
// A special segment is exactly one special token (<|eot_id|>, <s>, ...): it becomes that token's id,
// whatever the tokenizer would make of its characters.
struct ChatSegment {
  std::string text;
  bool train = false;
  bool special = false;
};

enum class ChatFamily { llama3, chatml, qwen3, llama2, mistral, alpaca };
const char* to_string(ChatFamily f);
// "llama3" -> ChatFamily::llama3; nullopt for an unknown name.
std::optional<ChatFamily> chat_family_from_string(const std::string& name);
// The names, for errors and --help: "llama3 | chatml | qwen3 | llama2 | mistral | alpaca".
std::string chat_family_names();

struct ChatTemplate {
  ChatFamily family = ChatFamily::llama3;
  std::string bos = "<|begin_of_text|>", eos = "<|end_of_text|>";
  // llama3: the original Llama 3 template appends the assistant header even without
  // add_generation_prompt; 3.1 and later add it only when asked.
  bool always_generation_prompt = false;
  // llama3 (3.1 and later): the system turn always opens with the knowledge cutoff and a date.
  std::optional<std::string> llama31_date;
  // chatml: the system turn the family inserts when a conversation has none ("" = none).
  std::string default_system;
  // mistral: the Mistral 7B Instruct v0.1 template writes a space after each </s>; Mixtral's does not.
  bool space_after_eos = false;
  // The end-of-turn text a generation stops at (besides EOS): <|eot_id|>, <|im_end|>, </s>, ...
  std::string end_of_turn() const;
};

// A built-in template with the family's usual special tokens (llama2/mistral: <s>, </s>).
ChatTemplate builtin_chat_template(ChatFamily family);

// Recognises a model's own Jinja `chat_template` (tokenizer_config.json) as one of the built-in
// families, with the variant details above; bos/eos are taken from the arguments. Throws UserError
// naming `source` and the choices when it cannot tell.
ChatTemplate recognise_chat_template(const std::string& jinja, const std::string& bos, const std::string& eos,
                                     const std::string& source);

// The conversation rendered as segments (concatenated: the template's text). Throws UserError naming
// `where` (e.g. "data/chat.jsonl record 12") and the turn for what the template cannot render: an
// unknown role, a system turn not first, turns that do not alternate as the family requires, an empty
// conversation.
std::vector<ChatSegment> render_chat(const ChatTemplate& t, const Conversation& c, const std::string& where);
std::string render_chat_text(const ChatTemplate& t, const Conversation& c, const std::string& where);

}  // namespace neftune::data
