// Levenshtein distance, for "did you mean" suggestions (config/ only).
#pragma once

#include <cstddef>
#include <string>

namespace neftune::config::detail {

// Insertions, deletions and substitutions (each 1) that turn `a` into `b`.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace neftune::config::detail
