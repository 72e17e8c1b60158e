// "Did you mean": the valid key nearest to a mistyped one.
#include "config/edit_distance.h"

#include <algorithm>
#include <vector>

#include "config/config.h"

namespace neftune::config {
namespace detail {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace detail

namespace {

std::string leaf(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

}  // namespace

std::string nearest_key(const std::string& key) {
  const auto keys = all_keys();
  for (const auto& k : keys)
    if (leaf(k) == leaf(key)) return k;
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& k : keys) {
    const size_t d = std::min(detail::edit_distance(key, k), detail::edit_distance(leaf(key), leaf(k)) + 1);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best_d <= std::max<size_t>(3, leaf(key).size() / 3) ? best : "";
}

}  // namespace neftune::config
