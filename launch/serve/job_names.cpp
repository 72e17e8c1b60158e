#include "launch/serve/job_names.h"

#include <cctype>
#include <cstdio>

namespace neftune::serve {

std::string sanitize_name(const std::string& name) {
  std::string out;
  for (const char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    out += ok ? c : '-';
  }
  while (!out.empty() && (out.front() == '.' || out.front() == '-')) out.erase(out.begin());
  if (out.size() > 48) out.resize(48);
  return out.empty() ? "job" : out;
}

std::string job_id(int64_t seq, const std::string& name) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(seq));
  return std::string(buf) + "-" + name;
}

std::string sweep_id(int64_t first_seq, const std::string& base) { return "sweep-" + job_id(first_seq, base); }

std::string combination_name(const std::string& base, const std::vector<std::string>& overrides) {
  std::string name = base;
  for (const auto& set : overrides) {  // "neftune.alpha=5" -> "-alpha5"
    const std::string key = set.substr(0, set.find('=')), value = set.substr(set.find('=') + 1);
    name += "-" + key.substr(key.rfind('.') + 1) + value;
  }
  return name;
}

}  // namespace neftune::serve
