// A compiled PCRE2 regular expression over UTF-8 with Unicode properties (PCRE2_UTF | PCRE2_UCP: \s, \w,
// \d and the POSIX classes follow Unicode, \p{L} and \p{N} are Unicode categories), JIT-compiled where
// PCRE2 supports it. For the Split pre-tokenizers of tokenizer.json (Llama 3, Qwen, GPT-2).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace neftune::tok {

class Regex {
 public:
  // `literal`: match `pattern` as plain text. Throws std::invalid_argument with PCRE2's message and the
  // offset in the pattern where it stopped.
  Regex(const std::string& pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [begin, end) byte offsets of the non-empty matches in `s` (valid UTF-8), left to right,
  // each search starting where the previous match ended. Safe to call from several threads.
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  pcre2_real_code_8* code_ = nullptr;
};

}  // namespace neftune::tok
