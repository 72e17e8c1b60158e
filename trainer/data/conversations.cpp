#include "trainer/data/conversations.h"

#include <nlohmann/json.hpp>

namespace neftune::data {
namespace {

using json = nlohmann::json;

struct Keys {
  const char* list;     // the record's array of turns
  const char* role;     // a turn's speaker
  const char* content;  // a turn's text
  const char* roles;    // the accepted speakers, for errors
};
constexpr Keys kMessages{"messages", "role", "content", "system, user, assistant"};
constexpr Keys kShareGpt{"conversations", "from", "value", "system, human, gpt (or user, assistant)"};

// The chat role of a turn's speaker, or "" when it is not one.
std::string role_of(const std::string& speaker, config::DataFormat format) {
  if (speaker == "system" || speaker == "user" || speaker == "assistant") return speaker;
  if (format == config::DataFormat::sharegpt) {
    if (speaker == "human") return "user";
    if (speaker == "gpt") return "assistant";
  }
  return "";
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n\f\v") == std::string::npos; }

std::string turn(size_t i, const std::string& what) { return "turn " + std::to_string(i + 1) + ": " + what; }

}  // namespace

std::optional<config::DataFormat> conversation_format(const json& record) {
  if (!record.is_object()) return std::nullopt;
  if (record.contains(kMessages.list)) return config::DataFormat::messages;
  if (record.contains(kShareGpt.list)) return config::DataFormat::sharegpt;
  return std::nullopt;
}

std::string parse_conversation(const json& record, config::DataFormat format, bool training,
                               std::vector<ChatMessage>& out) {
  const Keys& k = format == config::DataFormat::sharegpt ? kShareGpt : kMessages;
  out.clear();
  if (!record.is_object()) return "is not a JSON object";
  if (!record.contains(k.list) || record[k.list].is_null()) return std::string("field '") + k.list + "' is missing";
  const json& turns = record[k.list];
  if (!turns.is_array()) return std::string("field '") + k.list + "' is not an array of turns";
  if (turns.empty()) return std::string("field '") + k.list + "' has no turns";
  for (size_t i = 0; i < turns.size(); ++i) {
    const json& t = turns[i];
    if (!t.is_object()) return turn(i, "is not a JSON object");
    auto field = [&](const char* key, std::string& dst) -> std::string {
      if (!t.contains(key) || t[key].is_null()) return std::string("field '") + key + "' is missing";
      if (!t[key].is_string()) return std::string("field '") + key + "' is not a string";
      dst = t[key].get<std::string>();
      return "";
    };
    if (t.contains("tool_calls") && !t["tool_calls"].is_null())
      return turn(i, "tool calls are not supported (only system, user and assistant text)");
    // HF's templates render it (Qwen3's) or drop it (the others): neither may happen unseen.
    if (t.contains("reasoning_content") && !t["reasoning_content"].is_null()) {
      return turn(i,
                  "field 'reasoning_content' is not supported: put the reasoning into the content as "
                  "<think>...</think> before the answer (the qwen3 template renders it from there)");
    }
    std::string speaker, content;
    if (std::string err = field(k.role, speaker); !err.empty()) return turn(i, err);
    const std::string role = role_of(speaker, format);
    if (role.empty()) {
      return turn(i,
                  std::string("field '") + k.role + "' is not one of " + k.roles + " (tool turns are not supported)");
    }
    if (std::string err = field(k.content, content); !err.empty()) return turn(i, err);
    if (role == "system") {
      if (i != 0) return turn(i, "a system turn must come first");
      if (blank(content)) continue;  // an empty system prompt is no system prompt
    }
    if (training && role != "system") {
      if (blank(content)) return turn(i, "the content is empty");
      const size_t at = out.size() - (!out.empty() && out[0].role == "system" ? 1 : 0);
      const bool user_turn = at % 2 == 0;
      if (role != (user_turn ? "user" : "assistant")) {
        return turn(i, std::string(user_turn ? "expected a user turn" : "expected an assistant turn") +
                           ": after an optional system turn, user and assistant turns alternate, starting with user");
      }
    }
    out.push_back({role, std::move(content)});
  }
  if (training) {
    if (out.empty() || out.back().role == "system") return "the conversation has no assistant turn";
    if (out.back().role == "user")
      return turn(turns.size() - 1, "the conversation ends on a user turn (no assistant reply to learn from)");
  }
  return "";
}

Conversation instruction_conversation(const Record& r) {
  Conversation c;
  c.messages.push_back({"user", r.input.empty() ? r.instruction : r.instruction + "\n\n" + r.input});
  c.messages.push_back({"assistant", r.output});
  return c;
}

}  // namespace neftune::data
