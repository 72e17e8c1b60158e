// YAML trees shared by the config reader and the job-file reader (config/ only).
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/train_config.h"

namespace neftune::config::detail {

// Parses `yaml_text` into a mapping (empty text is an empty mapping); ConfigError naming `source`,
// line and column for invalid YAML, and for a document that is not a mapping.
YAML::Node load_yaml(const std::string& yaml_text, const std::string& source);

// Applies "a.b=value" (a --set override) onto the tree, making missing sections; returns the dotted key.
std::string apply_override(YAML::Node& root, const std::string& assignment);

// The typed, validated parse of an already loaded tree, after `overrides` (so callers that edit the
// tree keep its line numbers).
TrainConfig parse_config_node(YAML::Node root, const std::string& source, const std::vector<std::string>& overrides);

}  // namespace neftune::config::detail
