#pragma once
// What a JSON parse failure says, without the input's bytes.
#include <nlohmann/json.hpp>
#include <string>

namespace neftune::io {

// nlohmann's message without its "[json.exception.parse_error.101] " tag and without the
// "; last read: '...'" quote of the input: a file read by a daemon job (a data file, a model's
// config.json) may be one the submitter cannot read, and its bytes must not reach them through the
// error. The position (line, column) stays, so the user can find the fault in a file they own.
inline std::string json_error(const std::exception& e) {
  std::string m = e.what();
  if (m.rfind("[json.exception.", 0) == 0) {
    const auto close = m.find("] ");
    if (close != std::string::npos) m.erase(0, close + 2);
  }
  const auto quote = m.find("; last read: ");
  if (quote != std::string::npos) m.erase(quote);
  return m;
}

}  // namespace neftune::io
