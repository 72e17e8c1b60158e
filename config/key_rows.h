// The config tree flattened to one row per dotted key, in tree order (config/ only). --help, the key
// list, key_values, differing_keys and may_change_on_resume read these rows.
#pragma once

#include <string>
#include <vector>

#include "config/train_config.h"

namespace neftune::config::detail {

struct KeyRow {
  std::string key;    // dotted: "train.lr"
  std::string value;  // YAML text
  std::string doc;
  Resume resume = Resume::must_match;  // the field's flag, or its section's when that is may_change
};

std::vector<KeyRow> key_rows(const TrainConfig& cfg);

}  // namespace neftune::config::detail
