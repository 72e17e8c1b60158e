// Config values as YAML text, shared by the dumper and the key table (config/ only).
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>

#include "config/train_config.h"

namespace neftune::config::detail {

// Shortest decimal text that reads back as exactly `value`.
inline std::string format_double(double value) {
  char buf[64];
  if (std::floor(value) == value && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.1f", value);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  std::string s = buf;
  // Keep it a float in YAML's eyes (so "1" is written "1.0").
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

template <class T>
std::string format_value(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return std::to_string(v);
  } else if constexpr (std::is_same_v<T, double>) {
    return format_double(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else if constexpr (IsConfigEnum<T>::value) {
    return std::string(to_string(v));
  } else {
    static_assert(sizeof(T) == 0, "unsupported config field type");
  }
}

template <class T>
std::string format_value(const std::optional<T>& v) {
  return v ? format_value(*v) : "null";
}

}  // namespace neftune::config::detail
