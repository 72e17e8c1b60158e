// --set overrides ("train.lr=1e-4") applied onto a YAML tree before it is parsed.
#include "config/yaml_tree.h"

#include <sstream>

#include "config/config.h"

namespace neftune::config::detail {

std::string apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("--set " + assignment + ": expected key=value, e.g. --set train.lr=1e-4");
  std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = YAML::Load(text.empty() ? std::string("null") : text);
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set " + key + ": cannot parse value '" + text + "': " + e.msg);
  }
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
  // yaml-cpp nodes are handles: walk by reassigning a chain of child handles.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child = chain.back()[parts[i]];
    if (!child.IsDefined() || child.IsNull()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child = chain.back()[parts[i]];
    } else if (!child.IsMap()) {
      throw ConfigError("--set " + key + ": '" + parts[i] + "' is not a section");
    }
    chain.push_back(child);
  }
  chain.back()[parts.back()] = value;
  return key;
}

}  // namespace neftune::config::detail
