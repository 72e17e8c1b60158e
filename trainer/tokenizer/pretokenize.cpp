#include "trainer/tokenizer/pretokenize.h"

#include "trainer/tokenizer/regex.h"

namespace neftune::tok {
namespace {

// GPT-2's pre-tokenization pattern, as HF tokenizers' ByteLevel uses it.
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void split_pieces(const Regex& re, SplitBehavior behavior, PreTokens& t) {
  t.scratch.clear();
  for (const std::string_view piece : t.pieces) {
    t.matches.clear();
    re.find_all(piece, t.matches);
    size_t done = 0;
    for (const auto& [begin, end] : t.matches) {
      if (begin > done) t.scratch.push_back(piece.substr(done, begin - done));
      if (behavior == SplitBehavior::isolated) t.scratch.push_back(piece.substr(begin, end - begin));
      done = end;
    }
    if (done < piece.size()) t.scratch.push_back(piece.substr(done));
  }
  t.pieces.swap(t.scratch);
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(const std::string& pattern, bool literal, SplitBehavior behavior)
      : re_(pattern, literal), behavior_(behavior) {}
  void apply(PreTokens& t) const override { split_pieces(re_, behavior_, t); }

 private:
  Regex re_;
  SplitBehavior behavior_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) re_ = std::make_unique<Regex>(kGpt2Pattern, false);
  }
  void apply(PreTokens& t) const override {
    if (add_prefix_space_) {
      for (std::string_view& piece : t.pieces) {
        if (!piece.empty() && piece.front() == ' ') continue;
        t.storage.push_back(" " + std::string(piece));
        piece = t.storage.back();
      }
    }
    if (re_) split_pieces(*re_, SplitBehavior::isolated, t);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> re_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(const std::string& pattern, bool literal,
                                                       SplitBehavior behavior) {
  return std::make_unique<SplitPreTokenizer>(pattern, literal, behavior);
}

std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex) {
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, use_regex);
}

}  // namespace neftune::tok
