// A compiled PCRE2 regular expression over UTF-8 with Unicode properties (PCRE2_UTF | PCRE2_UCP: \s, \w,
// \d and the POSIX classes follow Unicode, \p{L} and \p{N} are Unicode categories), JIT-compiled where
// PCRE2 supports it. For the Split pre-tokenizers of tokenizer.json (Llama 3, Qwen, GPT-2).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/errors.h"

struct pcre2_real_code_8;

namespace neftune::tok {

// A pattern that PCRE2 gave up on (its backtracking limit) or that ran past its time budget on one text:
// a catastrophic pattern in a tokenizer.json. The message names the pattern and the text's length.
class RegexError : public UserError {
 public:
  using UserError::UserError;
};

// How long find_all may take on one text before it gives up (a real pre-tokenizer splits a megabyte in
// milliseconds).
inline constexpr double kRegexBudgetSeconds = 2.0;

class Regex {
 public:
  // `literal`: match `pattern` as plain text. Throws std::invalid_argument with PCRE2's message and the
  // offset in the pattern where it stopped.
  Regex(const std::string& pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [begin, end) byte offsets of the non-empty matches in `s` (valid UTF-8), left to right,
  // each search starting where the previous match ended. Safe to call from several threads. Throws
  // RegexError past PCRE2's match limit or kRegexBudgetSeconds, StopRequested on a stop request.
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  pcre2_real_code_8* code_ = nullptr;
  std::string pattern_;
};

}  // namespace neftune::tok
