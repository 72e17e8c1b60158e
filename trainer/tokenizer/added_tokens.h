// The added tokens of tokenizer.json (special tokens such as <|begin_of_text|> or <|im_start|>, and
// others such as Qwen's <think>): found in the text before anything else and emitted whole, so that
// the pre-tokenizers and the BPE model never see them. The leftmost match wins, the longest among
// those starting there (HF tokenizers' Aho-Corasick "leftmost longest").
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace neftune::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;     // skipped by decode
  bool lstrip = false;      // the match takes the whitespace before it
  bool rstrip = false;      // the match takes the whitespace after it
  bool normalized = false;  // matched in the normalized text (else in the raw text)
};

// A run of text to tokenize (id < 0) or a matched token.
struct Segment {
  std::string_view text;
  int32_t id = -1;
};

class AddedTokenMatcher {
 public:
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);
  bool empty() const { return tokens_.empty(); }
  // Appends the segments of `text` to `out`; no segment is empty.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  std::vector<AddedToken> tokens_;
  std::array<std::vector<uint32_t>, 256> by_first_byte_;  // indices into tokens_, longest first
};

}  // namespace neftune::tok
