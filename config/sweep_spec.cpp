// Daemon job files: a config plus `name` and a `sweep` of values, expanded into one config per combination.
#include "config/job.h"

#include <limits>

#include "config/yaml_tree.h"

namespace neftune::config {

std::vector<std::vector<std::string>> JobSpec::combinations() const {
  std::vector<std::vector<std::string>> out{{}};
  for (const auto& [key, values] : sweep) {
    std::vector<std::vector<std::string>> next;
    for (const auto& prefix : out) {
      for (const auto& v : values) {
        auto c = prefix;
        c.push_back(key + "=" + v);
        next.push_back(std::move(c));
      }
    }
    out = std::move(next);
  }
  return out;
}

int64_t JobSpec::combination_count() const {
  int64_t n = 1;
  for (const auto& [key, values] : sweep) {
    const auto m = static_cast<int64_t>(values.size());  // >= 1 (parse_job refuses empty lists)
    if (n > std::numeric_limits<int64_t>::max() / m) return std::numeric_limits<int64_t>::max();
    n *= m;
  }
  return n;
}

JobSpec parse_job(const std::string& yaml_text, const std::string& source, int64_t max_combinations) {
  const YAML::Node root = detail::load_yaml(yaml_text, source);
  // An empty body, `{}` or a file cut to nothing (a full disk) is not a request for the defaults.
  if (!root.IsDefined() || root.IsNull() || (root.IsMap() && root.size() == 0)) {
    throw ConfigError(
        source +
        ": the job is empty (no keys): write the training config in it, as for "
        "`neftune train` (`neftune train CONFIG --print-config` prints one with every default filled in)");
  }
  JobSpec job;
  YAML::Node rest(YAML::NodeType::Map);
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (key == "name") {
      if (!kv.second.IsScalar()) throw ConfigError(source + ": name: expected a string");
      job.name = kv.second.Scalar();
    } else if (key == "sweep") {
      if (!kv.second.IsMap()) throw ConfigError(source + ": sweep: expected a mapping {key: [values...]}");
      for (const auto& s : kv.second) {
        const std::string k = s.first.Scalar();
        if (!s.second.IsSequence() || s.second.size() == 0)
          throw ConfigError(source + ": sweep." + k + ": expected a non-empty list of values");
        std::vector<std::string> values;
        for (const auto& v : s.second) {
          if (!v.IsScalar() && !v.IsNull()) throw ConfigError(source + ": sweep." + k + ": values must be scalars");
          values.push_back(v.IsNull() ? "null" : v.Scalar());
        }
        job.sweep.emplace_back(k, std::move(values));
      }
    } else {
      rest[kv.first] = kv.second;
    }
  }
  YAML::Emitter out;
  out << rest;
  job.config_yaml = out.c_str();
  if (job.config_yaml == "{}") job.config_yaml = "";
  const int64_t count = job.combination_count();
  if (count > max_combinations) {
    std::string sizes;
    for (const auto& [key, values] : job.sweep) sizes += (sizes.empty() ? "" : " x ") + std::to_string(values.size());
    throw ConfigError(source + ": sweep: " + sizes + " values make " +
                      (count == std::numeric_limits<int64_t>::max() ? "more than 9.2e18" : std::to_string(count)) +
                      " jobs, over the limit of " + std::to_string(max_combinations) +
                      " per sweep (split it into smaller sweeps, or raise `neftune serve --max-sweep-jobs`)");
  }
  // Validate every combination on the original tree, so errors carry the file's own line numbers.
  for (const auto& combo : job.combinations()) detail::parse_config_node(YAML::Clone(rest), source, combo);
  return job;
}

}  // namespace neftune::config
