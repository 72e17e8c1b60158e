#include "trainer/tokenizer/hf_tokenizer.h"

#include <deque>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "config/errors.h"
#include "trainer/io/file_write.h"
#include "trainer/tokenizer/byte_level.h"
#include "trainer/tokenizer/unicode_nfc.h"
#include "trainer/tokenizer/utf8.h"

namespace neftune::tok {
namespace fs = std::filesystem;

HfTokenizer::HfTokenizer(const std::string& json_path) : parts_(load_hf_parts(json_path)) {}

std::vector<int32_t> HfTokenizer::encode(const std::string& text, bool add_bos) const {
  if (const size_t bad = utf8::find_invalid(text); bad != std::string::npos)
    throw UserError("tokenizer: the text is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + parts_.prefix.size() + parts_.suffix.size() + 1);
  if (add_bos) ids = parts_.prefix;
  // As HF does it: added tokens matched in the raw text, the rest normalized, then the added tokens
  // that match in normalized text, then pre-tokenizers and BPE on what remains.
  std::vector<Segment> segments, inner;
  if (parts_.raw_tokens.empty()) {
    segments.push_back(Segment{text, -1});
  } else {
    parts_.raw_tokens.split(text, segments);
  }
  std::string normalized;
  for (const Segment& s : segments) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    std::string_view t = s.text;
    if (parts_.nfc && !nfc_quick_check(t)) {
      normalized = nfc(t);
      t = normalized;
    }
    if (parts_.normalized_tokens.empty()) {
      encode_text(t, ids);
      continue;
    }
    inner.clear();
    parts_.normalized_tokens.split(t, inner);
    for (const Segment& n : inner) {
      if (n.id >= 0) {
        ids.push_back(n.id);
      } else {
        encode_text(n.text, ids);
      }
    }
  }
  if (add_bos) ids.insert(ids.end(), parts_.suffix.begin(), parts_.suffix.end());
  return ids;
}

void HfTokenizer::encode_text(std::string_view text, std::vector<int32_t>& ids) const {
  thread_local PreTokens t;
  t.pieces.assign(1, text);
  t.storage.clear();
  for (const auto& p : parts_.pre_tokenizers) p->apply(t);
  for (const std::string_view piece : t.pieces) parts_.bpe->encode(piece, ids);
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || parts_.id_special[static_cast<size_t>(id)]) continue;
    bytes += parts_.id_bytes[static_cast<size_t>(id)];
  }
  return utf8::lossy(bytes);
}

std::string HfTokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  const std::string& b = parts_.id_bytes[static_cast<size_t>(id)];
  return parts_.id_added[static_cast<size_t>(id)] ? b : byte_level::encode(b);
}

void HfTokenizer::save(const std::string& dir) const {
  const fs::path src = fs::path(parts_.json_path).parent_path();
  auto copy = [&](const fs::path& from, const char* name) {
    const fs::path to = fs::path(dir) / name;
    if (fs::exists(to) && fs::equivalent(from, to)) return;
    io::copy_file_atomic(from.string(), to.string());
  };
  copy(parts_.json_path, "tokenizer.json");
  if (!parts_.config_path.empty()) {
    copy(parts_.config_path, "tokenizer_config.json");
  } else {
    auto name = [&](int32_t id) { return id < 0 ? nlohmann::json(nullptr) : nlohmann::json(piece(id)); };
    const nlohmann::json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                   {"bos_token", name(parts_.bos)},
                                   {"eos_token", name(parts_.eos)},
                                   {"pad_token", name(parts_.pad)}};
    io::write_file_atomic((fs::path(dir) / "tokenizer_config.json").string(), config.dump(2) + "\n");
  }
  if (fs::exists(src / "special_tokens_map.json")) copy(src / "special_tokens_map.json", "special_tokens_map.json");
}

}  // namespace neftune::tok
