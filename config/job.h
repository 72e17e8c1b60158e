// A daemon job file: a training config plus two optional top-level keys the daemon consumes:
//   name: short-name                        (sanitised; the daemon generates the job id)
//   sweep: {neftune.alpha: [0, 5, 10, 15]}  (one job per combination of the listed values)
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace neftune::config {

struct JobSpec {
  std::string name;                                                     // empty when absent
  std::vector<std::pair<std::string, std::vector<std::string>>> sweep;  // key -> values (YAML text)
  std::string config_yaml;                                              // the file without name/sweep
  // Every combination as --set overrides ("neftune.alpha=5"); one empty combination without a sweep.
  std::vector<std::vector<std::string>> combinations() const;
  // How many combinations() makes, counted without making them; INT64_MAX when it would overflow.
  int64_t combination_count() const;
};

// Parses and validates a job file: each combination must be a valid TrainConfig (ConfigError otherwise,
// naming the source and key). A sweep of more than `max_combinations` is refused (ConfigError with the
// count and the limit) before any combination is made.
JobSpec parse_job(const std::string& yaml_text, const std::string& source, int64_t max_combinations);

}  // namespace neftune::config
