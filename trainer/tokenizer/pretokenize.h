// The pre-tokenizers of tokenizer.json that byte-level BPE files use: Split (a regex; Llama 3, Qwen) and
// ByteLevel (GPT-2). They cut text into pieces that the BPE model encodes one by one, never across.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace neftune::tok {

// Pieces of one text segment, in order: views into the segment or into `storage`.
struct PreTokens {
  std::vector<std::string_view> pieces;
  std::deque<std::string> storage;  // pieces a pre-tokenizer made up (a piece with a space put before it)
  std::vector<std::string_view> scratch;
  std::vector<std::pair<size_t, size_t>> matches;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces each piece with the pieces it splits into.
  virtual void apply(PreTokens& t) const = 0;
};

// What Split does with the regex's matches: Isolated keeps each match and each run of text between
// matches as pieces; Removed keeps only the text between matches.
enum class SplitBehavior { isolated, removed };

// Throws std::invalid_argument for a pattern PCRE2 rejects.
std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(const std::string& pattern, bool literal,
                                                       SplitBehavior behavior);

// ByteLevel: with add_prefix_space a piece that does not start with a space gets one; with use_regex the
// pieces are split by GPT-2's pattern. The byte-to-character mapping itself is left to the BPE model,
// which works on bytes (see bpe.h).
std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex);

}  // namespace neftune::tok
