#include "trainer/data/chat_template.h"

#include <regex>

#include "config/errors.h"
#include "trainer/data/prompt_template.h"

namespace neftune::data {
namespace {

constexpr ChatFamily kFamilies[] = {ChatFamily::llama3, ChatFamily::chatml,  ChatFamily::qwen3,
                                    ChatFamily::llama2, ChatFamily::mistral, ChatFamily::alpaca};

// Python's str.strip() / Jinja's trim: ASCII whitespace and the Unicode spaces (as UTF-8).
bool is_space_at(const std::string& s, size_t i, size_t* len) {
  static const char* const kUnicodeSpaces[] = {
      "\xc2\x85",     "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81", "\xe2\x80\x82", "\xe2\x80\x83",
      "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89", "\xe2\x80\x8a",
      "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80"};
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)) {
    *len = 1;
    return true;
  }
  for (const char* u : kUnicodeSpaces) {
    const size_t n = std::char_traits<char>::length(u);
    if (s.compare(i, n, u) == 0) {
      *len = n;
      return true;
    }
  }
  return false;
}

std::string strip_left(const std::string& s) {
  size_t i = 0, n = 0;
  while (i < s.size() && is_space_at(s, i, &n)) i += n;
  return s.substr(i);
}

std::string strip_right(const std::string& s) {
  // Spaces are at most 3 bytes: try each ending width.
  size_t end = s.size();
  for (bool more = true; more && end > 0;) {
    more = false;
    for (size_t w = 1; w <= 3 && w <= end; ++w) {
      size_t n = 0;
      if (is_space_at(s, end - w, &n) && n == w) {
        end -= w;
        more = true;
        break;
      }
    }
  }
  return s.substr(0, end);
}

std::string strip(const std::string& s) { return strip_right(strip_left(s)); }

std::string lstrip_newlines(const std::string& s) { return s.substr(std::min(s.find_first_not_of('\n'), s.size())); }
std::string rstrip_newlines(const std::string& s) {
  const size_t e = s.find_last_not_of('\n');
  return e == std::string::npos ? "" : s.substr(0, e + 1);
}

// Segments being built: adjacent pieces with the same flags are merged.
class Out {
 public:
  void text(const std::string& t, bool train = false) {
    if (t.empty()) return;
    if (!segs_.empty() && !segs_.back().special && segs_.back().train == train) {
      segs_.back().text += t;
    } else {
      segs_.push_back({t, train, false});
    }
  }
  void special(const std::string& t, bool train = false) {
    if (!t.empty()) segs_.push_back({t, train, true});
  }
  std::vector<ChatSegment> take() { return std::move(segs_); }

 private:
  std::vector<ChatSegment> segs_;
};

[[noreturn]] void bad(const std::string& where, size_t turn, const std::string& what) {
  throw UserError(where + ": turn " + std::to_string(turn + 1) + ": " + what);
}

void check_roles(const Conversation& c, const std::string& where) {
  if (c.messages.empty()) throw UserError(where + ": the conversation has no messages");
  for (size_t i = 0; i < c.messages.size(); ++i) {
    const std::string& r = c.messages[i].role;
    if (r != "system" && r != "user" && r != "assistant")
      bad(where, i, "role '" + r + "' is not one of system, user, assistant (tool turns are not supported)");
    if (r == "system" && i != 0) bad(where, i, "a system turn must come first");
  }
}

// user/assistant strictly alternating after an optional system turn, starting with user.
void check_alternation(const Conversation& c, const std::string& where, const char* family) {
  const size_t first = c.messages[0].role == "system" ? 1 : 0;
  for (size_t i = first; i < c.messages.size(); ++i) {
    const char* expected = (i - first) % 2 == 0 ? "user" : "assistant";
    if (c.messages[i].role != expected) {
      bad(where, i,
          std::string("the ") + family +
              " template needs user and assistant turns to alternate, starting with user (got " + c.messages[i].role +
              ")");
    }
  }
}

void render_llama3(const ChatTemplate& t, const Conversation& c, Out& out) {
  size_t i = 0;
  out.special(t.bos);
  if (t.llama31_date) {
    // 3.1+: a system turn always, opening with the knowledge cutoff and the date.
    std::string system;
    if (c.messages[0].role == "system") system = strip(c.messages[i++].content);
    out.special("<|start_header_id|>");
    out.text("system");
    out.special("<|end_header_id|>");
    out.text("\n\nCutting Knowledge Date: December 2023\nToday Date: " + *t.llama31_date + "\n\n" + system);
    out.special("<|eot_id|>");
  }
  for (; i < c.messages.size(); ++i) {
    const ChatMessage& m = c.messages[i];
    const bool train = m.role == "assistant";
    out.special("<|start_header_id|>");
    out.text(m.role);
    out.special("<|end_header_id|>");
    out.text("\n\n");
    out.text(strip(m.content), train);
    out.special("<|eot_id|>", train);
  }
  if (c.add_generation_prompt || t.always_generation_prompt) {
    out.special("<|start_header_id|>");
    out.text("assistant");
    out.special("<|end_header_id|>");
    out.text("\n\n");
  }
}

void chatml_turn(Out& out, const std::string& role, const std::string& body, bool train,
                 const std::string& train_prefix = "") {
  out.special("<|im_start|>");
  out.text(role + "\n");
  out.text(train_prefix, train);
  out.text(body, train);
  out.special("<|im_end|>", train);
  out.text("\n");
}

void render_chatml(const ChatTemplate& t, const Conversation& c, Out& out) {
  if (c.messages[0].role != "system" && !t.default_system.empty()) chatml_turn(out, "system", t.default_system, false);
  for (const ChatMessage& m : c.messages) chatml_turn(out, m.role, m.content, m.role == "assistant");
  if (c.add_generation_prompt) {
    out.special("<|im_start|>");
    out.text("assistant\n");
  }
}

// Qwen3's template without tools: reasoning (<think>...</think> in the content) is split off, and the
// assistant turns after the last user turn carry a <think> block, empty when there is no reasoning.
void render_qwen3(const Conversation& c, Out& out) {
  size_t last_query = c.messages.size() - 1;
  for (size_t k = c.messages.size(); k-- > 0;) {
    if (c.messages[k].role == "user" &&
        !(c.messages[k].content.rfind("<tool_response>", 0) == 0 && c.messages[k].content.size() >= 16 &&
          c.messages[k].content.compare(c.messages[k].content.size() - 16, 16, "</tool_response>") == 0)) {
      last_query = k;
      break;
    }
  }
  for (size_t i = 0; i < c.messages.size(); ++i) {
    const ChatMessage& m = c.messages[i];
    if (m.role != "assistant") {
      chatml_turn(out, m.role, m.content, false);
      continue;
    }
    std::string content = m.content, reasoning;
    const size_t close = content.rfind("</think>");
    if (close != std::string::npos) {
      const std::string before = content.substr(0, content.find("</think>"));
      content = lstrip_newlines(content.substr(close + 8));
      const std::string inner = rstrip_newlines(before);
      const size_t open = inner.rfind("<think>");
      reasoning = lstrip_newlines(open == std::string::npos ? inner : inner.substr(open + 7));
    }
    const bool last = i + 1 == c.messages.size();
    if (i > last_query && (last || !reasoning.empty())) {
      chatml_turn(out, "assistant", lstrip_newlines(content), true,
                  "<think>\n" + rstrip_newlines(lstrip_newlines(reasoning)) + "\n</think>\n\n");
    } else {
      chatml_turn(out, "assistant", content, true);
    }
  }
  if (c.add_generation_prompt) {
    out.special("<|im_start|>");
    out.text("assistant\n");
  }
}

void render_llama2(const ChatTemplate& t, const Conversation& c, Out& out, const std::string& where) {
  check_alternation(c, where, "llama2");
  size_t i = 0;
  std::string system;
  const bool has_system = c.messages[0].role == "system";
  if (has_system) system = c.messages[i++].content;
  for (size_t k = 0; i < c.messages.size(); ++i, ++k) {
    const ChatMessage& m = c.messages[i];
    if (m.role == "user") {
      const std::string content =
          k == 0 && has_system ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.content : m.content;
      out.special(t.bos);
      out.text("[INST] " + strip(content) + " [/INST]");
    } else {
      out.text(" ");
      out.text(strip(m.content) + " ", true);
      out.special(t.eos, true);
    }
  }
}

void render_mistral(const ChatTemplate& t, const Conversation& c, Out& out, const std::string& where) {
  if (c.messages[0].role == "system")
    bad(where, 0, "the mistral template has no system turn (put it into the first user turn, or use another template)");
  check_alternation(c, where, "mistral");
  out.special(t.bos);
  for (const ChatMessage& m : c.messages) {
    if (m.role == "user") {
      out.text("[INST] " + m.content + " [/INST]");
    } else {
      out.text(m.content, true);
      out.special(t.eos, true);
      if (t.space_after_eos) out.text(" ");
    }
  }
}

void render_alpaca(const ChatTemplate& t, const Conversation& c, Out& out, const std::string& where) {
  const size_t first = c.messages[0].role == "system" ? 1 : 0;
  const size_t n = c.messages.size() - first;
  if (n != 2 && !(n == 1 && c.add_generation_prompt)) {
    bad(where, first,
        "the alpaca template takes one user turn and one assistant turn (" + std::to_string(n) + " given)");
  }
  check_alternation(c, where, "alpaca");
  out.special(t.bos);
  out.text(format_prompt(c.messages[first].content, ""));
  if (n == 2) {
    out.text(c.messages[first + 1].content, true);
    out.special(t.eos, true);
  }
}

}  // namespace

const char* to_string(ChatFamily f) {
  switch (f) {
    case ChatFamily::llama3:
      return "llama3";
    case ChatFamily::chatml:
      return "chatml";
    case ChatFamily::qwen3:
      return "qwen3";
    case ChatFamily::llama2:
      return "llama2";
    case ChatFamily::mistral:
      return "mistral";
    case ChatFamily::alpaca:
      return "alpaca";
  }
  return "?";
}

std::optional<ChatFamily> chat_family_from_string(const std::string& name) {
  for (ChatFamily f : kFamilies)
    if (name == to_string(f)) return f;
  return std::nullopt;
}

std::string chat_family_names() {
  std::string s;
  for (ChatFamily f : kFamilies) s += (s.empty() ? "" : " | ") + std::string(to_string(f));
  return s;
}

std::string ChatTemplate::end_of_turn() const {
  switch (family) {
    case ChatFamily::llama3:
      return "<|eot_id|>";
    case ChatFamily::chatml:
    case ChatFamily::qwen3:
      return "<|im_end|>";
    default:
      return eos;
  }
}

ChatTemplate builtin_chat_template(ChatFamily family) {
  ChatTemplate t;
  t.family = family;
  switch (family) {
    case ChatFamily::llama3:
      t.llama31_date = "26 Jul 2024";  // the Llama 3.1 template's default date_string
      break;
    case ChatFamily::chatml:
    case ChatFamily::qwen3:
      t.bos = "";
      t.eos = "<|im_end|>";
      break;
    case ChatFamily::llama2:
    case ChatFamily::mistral:
    case ChatFamily::alpaca:
      t.bos = "<s>";
      t.eos = "</s>";
      break;
  }
  return t;
}

ChatTemplate recognise_chat_template(const std::string& jinja, const std::string& bos, const std::string& eos,
                                     const std::string& source) {
  ChatTemplate t;
  t.bos = bos;
  t.eos = eos;
  auto has = [&](const char* s) { return jinja.find(s) != std::string::npos; };
  if (has("<|start_header_id|>") && has("<|eot_id|>")) {
    t.family = ChatFamily::llama3;
    if (has("Cutting Knowledge Date")) {
      t.llama31_date = "26 Jul 2024";
    } else {
      t.always_generation_prompt = !has("add_generation_prompt");  // the first Llama 3 Instruct template
    }
    return t;
  }
  if (has("<|im_start|>") && has("<|im_end|>")) {
    t.family = has("<think>") ? ChatFamily::qwen3 : ChatFamily::chatml;
    if (t.family == ChatFamily::chatml) {
      // The default system turn written out in the template (Qwen2: "You are a helpful assistant.",
      // Qwen2.5: "You are Qwen, created by Alibaba Cloud. ..."), as `<|im_start|>system\n...<|im_end|>`.
      static const std::regex kDefault(R"(<\|im_start\|>system\\n([^'"{}<]+)<\|im_end\|>)");
      std::smatch m;
      if (std::regex_search(jinja, m, kDefault)) t.default_system = m[1];
    }
    return t;
  }
  if (has("<<SYS>>") && has("[INST]")) {
    t.family = ChatFamily::llama2;
    return t;
  }
  if (has("[INST]") && has("[/INST]")) {
    t.family = ChatFamily::mistral;
    t.space_after_eos = has("eos_token + ' '");
    return t;
  }
  throw UserError(source + ": chat_template is none of the built-in families (" + chat_family_names() +
                  "): set data.chat_template to the one the model was trained with");
}

std::vector<ChatSegment> render_chat(const ChatTemplate& t, const Conversation& c, const std::string& where) {
  check_roles(c, where);
  Out out;
  switch (t.family) {
    case ChatFamily::llama3:
      render_llama3(t, c, out);
      break;
    case ChatFamily::chatml:
      render_chatml(t, c, out);
      break;
    case ChatFamily::qwen3:
      render_qwen3(c, out);
      break;
    case ChatFamily::llama2:
      render_llama2(t, c, out, where);
      break;
    case ChatFamily::mistral:
      render_mistral(t, c, out, where);
      break;
    case ChatFamily::alpaca:
      render_alpaca(t, c, out, where);
      break;
  }
  return out.take();
}

std::string render_chat_text(const ChatTemplate& t, const Conversation& c, const std::string& where) {
  std::string s;
  for (const ChatSegment& seg : render_chat(t, c, where)) s += seg.text;
  return s;
}

}  // namespace neftune::data
