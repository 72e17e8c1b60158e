// The flat key table and what is read from it: the key list, values, differences, resume flags.
#include "config/key_rows.h"

#include "config/config.h"
#include "config/format_value.h"

namespace neftune::config {
namespace detail {
namespace {

class RowCollector {
 public:
  RowCollector(std::string prefix, Resume section_resume)
      : prefix_(std::move(prefix)), section_resume_(section_resume) {}

  template <class T>
  void operator()(const char* key, const T& value, const char* doc, Resume resume = Resume::must_match) {
    rows.push_back({prefix_ + key, format_value(value), doc, combine(resume)});
  }
  template <class S>
  void section(const char* key, const S& s, const char* /*doc*/, Resume resume = Resume::must_match) {
    RowCollector sub(prefix_ + key + ".", combine(resume));
    const_cast<S&>(s).visit(sub);
    rows.insert(rows.end(), sub.rows.begin(), sub.rows.end());
  }
  std::vector<KeyRow> rows;

 private:
  Resume combine(Resume own) const {
    return own == Resume::may_change || section_resume_ == Resume::may_change ? Resume::may_change : Resume::must_match;
  }

  std::string prefix_;
  Resume section_resume_;
};

}  // namespace

std::vector<KeyRow> key_rows(const TrainConfig& cfg) {
  RowCollector collector("", Resume::must_match);
  const_cast<TrainConfig&>(cfg).visit(collector);
  return collector.rows;
}

}  // namespace detail

std::vector<std::string> all_keys() {
  std::vector<std::string> keys;
  for (const auto& row : detail::key_rows(TrainConfig{})) keys.push_back(row.key);
  return keys;
}

std::vector<std::pair<std::string, std::string>> key_values(const TrainConfig& cfg) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : detail::key_rows(cfg)) out.emplace_back(row.key, row.value);
  return out;
}

std::vector<std::string> differing_keys(const TrainConfig& a, const TrainConfig& b) {
  const auto ra = detail::key_rows(a), rb = detail::key_rows(b);
  std::vector<std::string> out;
  for (size_t i = 0; i < ra.size(); ++i)
    if (ra[i].value != rb[i].value) out.push_back(ra[i].key + ": " + ra[i].value + " -> " + rb[i].value);
  return out;
}

bool may_change_on_resume(const std::string& dotted_key) {
  static const std::vector<detail::KeyRow> kRows = detail::key_rows(TrainConfig{});
  for (const auto& row : kRows)
    if (row.key == dotted_key) return row.resume == Resume::may_change;
  return false;
}

}  // namespace neftune::config
