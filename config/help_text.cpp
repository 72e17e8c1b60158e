// The "Config keys" table of `neftune train --help`.
#include "config/config.h"

#include <algorithm>

#include "config/key_rows.h"

namespace neftune::config {

std::string describe_keys() {
  const auto rows = detail::key_rows(TrainConfig{});
  size_t wk = 0, wv = 0;
  for (const auto& r : rows) {
    wk = std::max(wk, r.key.size());
    wv = std::max(wv, r.value.size());
  }
  std::string out;
  for (const auto& r : rows) {
    out += "  " + r.key + std::string(wk - r.key.size() + 2, ' ') + r.value +
           std::string(wv - r.value.size() + 2, ' ') + r.doc +
           (r.resume == Resume::may_change ? " (may change on resume)" : "") + "\n";
  }
  return out;
}

}  // namespace neftune::config
