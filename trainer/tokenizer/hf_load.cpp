// Reading tokenizer.json into HfParts: each component is checked against what neftune implements, and
// anything else is an error naming the file, the JSON path and the type (never an approximation).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "config/errors.h"
#include "trainer/io/file_read.h"
#include "trainer/io/json_error.h"
#include "trainer/tokenizer/byte_level.h"
#include "trainer/tokenizer/hf_parts.h"
#include "trainer/tokenizer/string_id_map.h"
#include "trainer/tokenizer/tokenizer_json_reader.h"
#include "trainer/tokenizer/unicode_nfc.h"

namespace neftune::tok {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Special tokens that end a text or a turn, in the order eos falls back to them when
// tokenizer_config.json names none (Llama 3, GPT-2/Qwen base, Llama 2 style, ChatML, Llama 3 chat).
// Ids a tokenizer.json may use. The largest real vocabularies have about 262,000 tokens; a file's ids size
// the embedding table, so one stray id of a billion would ask for tens of GB before anything else.
constexpr int64_t kMaxTokenId = (int64_t{1} << 22) - 1;
// Ids up to the largest that no token uses. Real files number their tokens without gaps; a larger gap
// makes a model with rows no token can reach (a hand-edited or damaged file).
constexpr int64_t kMaxUnusedIds = 1024;

const char* const kEndTokens[] = {"<|end_of_text|>", "<|endoftext|>", "</s>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>"};

json read_json_file(const std::string& path) {
  const std::string text = io::read_input(path, io::Input::json, "tokenizer JSON file");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw UserError(path + ": invalid JSON: " + io::json_error(e));
  }
}

// A JSON value and where it sits in its file, for error messages.
struct Node {
  const json& j;
  std::string path;  // "pre_tokenizer.pretokenizers[1]"
  const std::string& file;

  [[noreturn]] void fail(const std::string& what) const {
    throw UserError(file + ": " + (path.empty() ? "" : path + ": ") + what);
  }
  bool has(const char* key) const { return j.is_object() && j.contains(key) && !j[key].is_null(); }
  Node at(const char* key) const {
    if (!j.is_object() || !j.contains(key)) fail(std::string("missing '") + key + "'");
    return Node{j[key], path.empty() ? key : path + "." + key, file};
  }
  Node at(size_t i) const { return Node{j[i], path + "[" + std::to_string(i) + "]", file}; }
  size_t size() const {
    if (!j.is_array()) fail("expected an array");
    return j.size();
  }
  std::string str() const {
    if (!j.is_string()) fail("expected a string");
    return j.get<std::string>();
  }
  int64_t integer() const {
    if (!j.is_number_integer()) fail("expected an integer");
    return j.get<int64_t>();
  }
  bool flag(const char* key, bool default_value) const {
    if (!has(key)) return default_value;
    if (!j[key].is_boolean()) at(key).fail("expected true or false");
    return j[key].get<bool>();
  }
  std::string type() const { return at("type").str(); }
  [[noreturn]] void unsupported(const std::string& implemented) const {
    fail("type '" + type() + "' is not supported (neftune implements " + implemented + ")");
  }
};

void load_normalizer(const Node& n, HfParts& p) {
  if (n.j.is_null()) return;
  const std::string type = n.type();
  if (type == "NFC") {
    p.nfc = true;
  } else if (type == "Sequence") {
    const Node list = n.at("normalizers");
    for (size_t i = 0; i < list.size(); ++i) load_normalizer(list.at(i), p);
  } else {
    n.unsupported("NFC and Sequence");
  }
}

// Appends the pre-tokenizers of `n`; `kinds` records their types, to check the order afterwards.
void load_pre_tokenizer(const Node& n, HfParts& p, std::vector<std::string>& kinds) {
  if (n.j.is_null()) return;
  const std::string type = n.type();
  if (type == "Sequence") {
    const Node list = n.at("pretokenizers");
    for (size_t i = 0; i < list.size(); ++i) load_pre_tokenizer(list.at(i), p, kinds);
    return;
  }
  if (type == "Split") {
    const Node pattern = n.at("pattern");
    const bool regex = pattern.has("Regex");
    if (!regex && !pattern.has("String")) pattern.fail("expected {\"Regex\": ...} or {\"String\": ...}");
    const std::string text = pattern.at(regex ? "Regex" : "String").str();
    if (text.empty()) pattern.at(regex ? "Regex" : "String").fail("an empty pattern matches nothing to split on");
    const std::string behavior = n.at("behavior").str();
    if (behavior != "Isolated" && behavior != "Removed")
      n.at("behavior").fail("'" + behavior + "' is not supported (neftune implements Isolated and Removed)");
    if (n.flag("invert", false)) n.at("invert").fail("true is not supported");
    try {
      p.pre_tokenizers.push_back(make_split_pre_tokenizer(
          text, !regex, behavior == "Isolated" ? SplitBehavior::isolated : SplitBehavior::removed));
    } catch (const std::invalid_argument& e) {
      pattern.fail(e.what());
    }
  } else if (type == "ByteLevel") {
    // HF's defaults for absent fields: add_prefix_space true, use_regex true.
    p.pre_tokenizers.push_back(
        make_byte_level_pre_tokenizer(n.flag("add_prefix_space", true), n.flag("use_regex", true)));
  } else {
    n.unsupported("Split, ByteLevel and Sequence");
  }
  kinds.push_back(type);
}

// The ids a post-processor puts before and after the text (prefix, suffix), composed over Sequence.
void load_post_processor(const Node& n, HfParts& p) {
  if (n.j.is_null()) return;
  const std::string type = n.type();
  if (type == "ByteLevel") return;  // changes offsets only
  if (type == "Sequence") {
    const Node list = n.at("processors");
    for (size_t i = 0; i < list.size(); ++i) load_post_processor(list.at(i), p);
    return;
  }
  if (type != "TemplateProcessing") n.unsupported("TemplateProcessing, ByteLevel and Sequence");
  const Node single = n.at("single");
  const Node specials = n.at("special_tokens");
  std::vector<int32_t> before, after;
  bool seen_text = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const Node item = single.at(i);
    if (item.has("Sequence")) {
      const std::string id = item.at("Sequence").at("id").str();
      if (id != "A" || seen_text) item.fail("a single-sequence template holds sequence A once");
      seen_text = true;
    } else if (item.has("SpecialToken")) {
      const std::string name = item.at("SpecialToken").at("id").str();
      if (!specials.j.is_object() || !specials.j.contains(name))
        specials.fail("no entry for the template's special token '" + name + "'");
      const Node ids = specials.at(name.c_str()).at("ids");
      for (size_t k = 0; k < ids.size(); ++k)
        (seen_text ? after : before).push_back(static_cast<int32_t>(ids.at(k).integer()));
    } else {
      item.fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    }
  }
  if (!seen_text) single.fail("the template has no sequence A");
  p.prefix.insert(p.prefix.begin(), before.begin(), before.end());
  p.suffix.insert(p.suffix.end(), after.begin(), after.end());
}

void load_decoder(const Node& n) {
  if (n.j.is_null()) n.fail("null is not supported (byte-level BPE needs the ByteLevel decoder)");
  const std::string type = n.type();
  if (type == "ByteLevel") return;
  if (type == "Sequence" && n.at("decoders").size() == 1) return load_decoder(n.at("decoders").at(size_t{0}));
  n.unsupported("ByteLevel (alone or as the only member of a Sequence)");
}

// model.vocab and model.merges as read_tokenizer_json streams them: the vocabulary by the bytes each
// token spells, and each merge's two tokens' bytes (resolved to ids once the whole vocabulary is in).
class BpeTables final : public TokenizerJsonSink {
 public:
  explicit BpeTables(HfParts& p) : p_(p) {}

  void vocab_entry(const std::string& token, int64_t id) override {
    if (id < 0 || id > kMaxTokenId) {
      throw UserError(p_.json_path + ": model.vocab: token '" + token + "' has no valid id (0 to " +
                      std::to_string(kMaxTokenId) + ")");
    }
    const auto i = static_cast<size_t>(id);
    if (i >= p_.id_bytes.size()) p_.id_bytes.resize(std::max(i + 1, p_.id_bytes.size() * 3 / 2));
    size = std::max<int64_t>(size, id + 1);
    std::string& bytes = p_.id_bytes[i];
    bytes.clear();
    if (byte_level::decode_append(token, bytes)) {
      by_bytes.set(bytes, static_cast<int32_t>(id));
    } else {
      // Spelled outside the byte-level alphabet: never the result of byte-level input. decode writes it
      // as it is, as HF's ByteLevel decoder does.
      bytes = token;
    }
    ++entries;
  }
  void merge(std::string_view left, std::string_view right, size_t rank) override {
    const size_t begin = arena_.size();
    if (!byte_level::decode_append(left, arena_)) return arena_.resize(begin);  // never applies
    const size_t split = arena_.size();
    if (!byte_level::decode_append(right, arena_)) return arena_.resize(begin);
    merges_.push_back({begin, split, arena_.size(), rank});
  }

  // The merges as ids, in rank order.
  std::vector<BytePairEncoder::Merge> resolve_merges() const {
    std::vector<BytePairEncoder::Merge> out;
    out.reserve(merges_.size());
    const std::string_view arena = arena_;
    for (const Pending& m : merges_) {
      const std::string_view l = arena.substr(m.begin, m.split - m.begin), r = arena.substr(m.split, m.end - m.split);
      const int32_t li = by_bytes.find(l), ri = by_bytes.find(r),
                    lri = by_bytes.find(arena.substr(m.begin, m.end - m.begin));
      if (li < 0 || ri < 0 || lri < 0) {
        const std::string missing = byte_level::encode(li < 0   ? l
                                                       : ri < 0 ? r
                                                                : arena.substr(m.begin, m.end - m.begin));
        throw UserError(p_.json_path + ": model.merges[" + std::to_string(m.rank) + "]: token '" + missing +
                        "' is not in the vocabulary");
      }
      out.push_back({li, ri, lri});
    }
    return out;
  }

  StringIdMap by_bytes{1 << 17};
  int64_t size = 0;  // largest id + 1
  size_t entries = 0;

 private:
  struct Pending {
    size_t begin, split, end, rank;
  };
  HfParts& p_;
  std::string arena_;
  std::vector<Pending> merges_;
};

std::vector<AddedToken> load_added_tokens(const Node& root, HfParts& p) {
  std::vector<AddedToken> out;
  if (!root.has("added_tokens")) return out;
  const Node list = root.at("added_tokens");
  for (size_t i = 0; i < list.size(); ++i) {
    const Node t = list.at(i);
    AddedToken a;
    const int64_t id = t.at("id").integer();
    if (id < 0 || id > kMaxTokenId) t.at("id").fail("out of range (0 to " + std::to_string(kMaxTokenId) + ")");
    a.id = static_cast<int32_t>(id);
    a.content = t.at("content").str();
    a.special = t.flag("special", false);
    a.lstrip = t.flag("lstrip", false);
    a.rstrip = t.flag("rstrip", false);
    a.normalized = t.flag("normalized", !a.special);
    if (t.flag("single_word", false)) t.at("single_word").fail("true is not supported ('" + a.content + "')");
    if (a.normalized && p.nfc && !nfc_quick_check(a.content)) a.content = nfc(a.content);
    if (static_cast<size_t>(a.id) >= p.id_bytes.size()) p.id_bytes.resize(static_cast<size_t>(a.id) + 1);
    p.id_bytes[static_cast<size_t>(a.id)] = a.content;
    out.push_back(std::move(a));
  }
  return out;
}

// bos/eos/pad from tokenizer_config.json ("<|begin_of_text|>", {"content": ...} or null).
void load_special_ids(HfParts& p, const std::vector<AddedToken>& added, const StringIdMap& by_bytes) {
  std::unordered_map<std::string, int32_t> added_ids;
  for (const AddedToken& a : added) added_ids.emplace(a.content, a.id);
  auto find = [&](const std::string& content) -> int32_t {
    if (const auto it = added_ids.find(content); it != added_ids.end()) return it->second;
    const auto bytes = byte_level::decode(content);
    return bytes ? by_bytes.find(*bytes) : -1;
  };
  const fs::path config = fs::path(p.json_path).parent_path() / "tokenizer_config.json";
  if (fs::exists(config)) {
    p.config_path = config.string();
    const json cfg = read_json_file(p.config_path);
    const Node root{cfg, "", p.config_path};
    auto id_of = [&](const char* key) -> int32_t {
      if (!root.has(key)) return -1;
      const Node n = root.at(key);
      const std::string content = n.j.is_object() ? n.at("content").str() : n.str();
      const int32_t id = find(content);
      if (id < 0) n.fail("'" + content + "' is not a token of " + p.json_path);
      return id;
    };
    p.bos = id_of("bos_token");
    p.eos = id_of("eos_token");
    p.pad = id_of("pad_token");
  } else if (!p.prefix.empty()) {
    p.bos = p.prefix.front();  // what the post-processor puts first
  }
  std::vector<int32_t> ends;  // special added tokens only: "</s>" is an ordinary token of Qwen's vocabulary
  for (const char* name : kEndTokens) {
    for (const AddedToken& a : added)
      if (a.special && a.content == name) ends.push_back(a.id);
  }
  if (p.eos < 0 && !ends.empty()) p.eos = ends.front();
  if (p.eos < 0) {
    throw UserError(
        p.json_path + ": no EOS token: " +
        (p.config_path.empty() ? "no tokenizer_config.json beside it" : "tokenizer_config.json names none") +
        " and it has none of <|end_of_text|>, <|endoftext|>, </s>, <|im_end|> (set eos_token in "
        "tokenizer_config.json)");
  }
  p.stop_ids = {p.eos};
  for (const int32_t id : ends)
    if (std::find(p.stop_ids.begin(), p.stop_ids.end(), id) == p.stop_ids.end()) p.stop_ids.push_back(id);
  if (p.pad < 0) p.pad = p.eos;
}

}  // namespace

HfParts load_hf_parts(const std::string& json_path) {
  HfParts p;
  p.json_path = json_path;
  BpeTables tables(p);
  const json doc = read_tokenizer_json(json_path, tables);
  const Node root{doc, "", json_path};
  if (!doc.is_object()) root.fail("expected a JSON object");

  load_normalizer(root.has("normalizer") ? root.at("normalizer") : Node{json(), "normalizer", json_path}, p);
  std::vector<std::string> kinds;
  if (root.has("pre_tokenizer")) load_pre_tokenizer(root.at("pre_tokenizer"), p, kinds);
  const auto byte_level_count = std::count(kinds.begin(), kinds.end(), "ByteLevel");
  if (kinds.empty() || kinds.back() != "ByteLevel" || byte_level_count != 1) {
    std::string seen;
    for (const auto& k : kinds) seen += (seen.empty() ? "" : ", ") + k;
    Node{doc, "pre_tokenizer", json_path}.fail(
        "only byte-level BPE is supported: the pre-tokenizers must end with one "
        "ByteLevel (this file has: " +
        (seen.empty() ? "none" : seen) + ")");
  }
  if (root.has("post_processor")) load_post_processor(root.at("post_processor"), p);
  load_decoder(root.has("decoder") ? root.at("decoder") : Node{json(), "decoder", json_path});
  for (const char* key : {"truncation", "padding"}) {
    if (root.has(key))
      spdlog::warn("[tokenizer] {}: '{}' is not applied (data.max_seq_len truncates, collation pads)", json_path, key);
  }

  const Node model = root.at("model");
  if (model.type() != "BPE") model.unsupported("BPE");
  if (model.has("dropout") && !(model.j["dropout"].is_number() && model.j["dropout"].get<double>() == 0.0))
    model.at("dropout").fail("BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.has(key) && !model.at(key).str().empty()) model.at(key).fail("a non-empty affix is not supported");
  // read_tokenizer_json streamed them when they had the right shapes, and left them in the tree otherwise.
  for (const char* key : {"vocab", "merges"}) {
    if (model.j.contains(key))
      model.at(key).fail(std::string("expected ") + (key[0] == 'v' ? "an object of token -> id" : "an array"));
  }
  if (tables.entries == 0) model.fail("missing 'vocab' (or it is empty)");
  p.id_bytes.resize(static_cast<size_t>(tables.size));
  const std::vector<BytePairEncoder::Merge> merges = tables.resolve_merges();

  std::vector<AddedToken> added = load_added_tokens(root, p);
  p.id_added.assign(p.id_bytes.size(), 0);
  p.id_special.assign(p.id_bytes.size(), 0);
  std::vector<AddedToken> raw, normalized;
  for (AddedToken& a : added) {
    p.id_added[static_cast<size_t>(a.id)] = 1;
    p.id_special[static_cast<size_t>(a.id)] = a.special ? 1 : 0;
    (a.normalized ? normalized : raw).push_back(a);
  }
  const auto used = static_cast<int64_t>(
      std::count_if(p.id_bytes.begin(), p.id_bytes.end(), [](const std::string& b) { return !b.empty(); }));
  const auto vocab = static_cast<int64_t>(p.id_bytes.size());
  if (vocab - used > kMaxUnusedIds) {
    int64_t largest = 0;
    std::string largest_name = "model.vocab";
    for (const AddedToken& a : added) {
      if (a.id >= largest) {
        largest = a.id;
        largest_name = "added token '" + a.content + "'";
      }
    }
    if (largest + 1 < vocab) largest_name = "model.vocab";
    throw UserError(json_path + ": ids run to " + std::to_string(vocab - 1) + " (" + largest_name + ") but only " +
                    std::to_string(used) + " are used: " + std::to_string(vocab - used) +
                    " ids without a token would become embedding rows (at most " + std::to_string(kMaxUnusedIds) +
                    " are allowed): fix the token's id");
  }
  p.raw_tokens = AddedTokenMatcher(std::move(raw));
  p.normalized_tokens = AddedTokenMatcher(std::move(normalized));
  load_special_ids(p, added, tables.by_bytes);

  try {
    p.bpe = std::make_unique<BytePairEncoder>(std::move(tables.by_bytes), merges, model.flag("ignore_merges", false));
  } catch (const std::invalid_argument& e) {
    throw UserError(json_path + ": model.vocab: " + e.what());
  }
  return p;
}

}  // namespace neftune::tok
