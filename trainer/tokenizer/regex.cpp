#include "trainer/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <chrono>
#include <stdexcept>

#include "trainer/run/stop_signal.h"

namespace neftune::tok {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  const int n = pcre2_get_error_message(code, buf, sizeof buf);
  return n < 0 ? "PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<const char*>(buf));
}

// Per-thread match state: match data for the whole-match offsets, and a JIT stack larger than the
// 32 KiB default so that long inputs (a megabyte without a space) do not run out of it.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(size_t{32} * 1024, size_t{16} * 1024 * 1024, nullptr);

  MatchState() {
    if (!data || !context) throw std::bad_alloc();
    if (jit_stack) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
};

}  // namespace

Regex::Regex(const std::string& pattern, bool literal) : pattern_(pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
  code_ =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error, &offset, nullptr);
  if (!code_)
    throw std::invalid_argument("invalid regex at offset " + std::to_string(offset) + ": " + pcre2_message(error));
  pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // without JIT support, pcre2_match interprets
}

Regex::~Regex() { pcre2_code_free(code_); }

void Regex::find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
  thread_local MatchState state;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  const size_t n = s.size();
  size_t start = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto fail = [&](const std::string& why) {
    const std::string shown = pattern_.size() > 80 ? pattern_.substr(0, 80) + "..." : pattern_;
    throw RegexError("pre-tokenizer pattern '" + shown + "' " + why + " on a text of " + std::to_string(n) +
                     " bytes: the pattern backtracks catastrophically; fix it in tokenizer.json");
  };
  for (size_t matches = 1; start < n; ++matches) {
    const int rc = pcre2_match(code_, subject, n, start, PCRE2_NO_UTF_CHECK, state.data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT)
      fail("hit PCRE2's backtracking limit");
    if (rc < 0) throw std::runtime_error("regex match failed: " + pcre2_message(rc));
    if (matches % 16 == 0) {  // a clock read per 16 matches: little next to the matching itself
      if (run::stop_requested() != 0) throw StopRequested("stop requested while tokenizing");
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > kRegexBudgetSeconds)
        fail("ran past its budget of " + std::to_string(static_cast<int>(kRegexBudgetSeconds)) + " s");
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
    if (ov[1] > ov[0]) {
      out.emplace_back(ov[0], ov[1]);
      start = ov[1];
    } else {  // an empty match: go on after the next character
      start = ov[0] + 1;
      while (start < n && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) ++start;
    }
  }
}

}  // namespace neftune::tok
