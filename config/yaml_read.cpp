// Reading a config: YAML text or a file, through --set overrides, into a validated TrainConfig. Each
// key is parsed by a visitor walking TrainConfig::visit(); unknown and duplicate keys are errors.
#include "config/config.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "config/yaml_tree.h"
#include "trainer/io/file_read.h"

namespace neftune::config {
namespace {

template <class E>
std::string enum_choices() {
  std::string out;
  for (const auto& [value, name] : EnumNames<E>::names) {
    (void)value;
    if (!out.empty()) out += " | ";
    out += name;
  }
  return out;
}

// Where a node came from, for error messages.
struct Origin {
  std::string source;                // file name or "text"
  std::set<std::string> overridden;  // dotted keys set by --set
  std::string where(const std::string& key, const YAML::Node& n) const {
    if (overridden.count(key)) return "--set " + key;
    if (n.Mark().is_null()) return source;
    return source + ":" + std::to_string(n.Mark().line + 1);
  }
};

class Reader {
 public:
  Reader(const YAML::Node& node, std::string prefix, const Origin& origin)
      : node_(node), prefix_(std::move(prefix)), origin_(origin) {}

  template <class T>
  void operator()(const char* key, T& value, const char* /*doc*/, Resume /*resume*/ = Resume::must_match) {
    known_.insert(key);
    const YAML::Node n = node_[key];
    if (!n.IsDefined()) return;
    parse(n, prefix_ + key, value);
  }

  template <class S>
  void section(const char* key, S& s, const char* /*doc*/, Resume /*resume*/ = Resume::must_match) {
    known_.insert(key);
    const YAML::Node n = node_[key];
    if (!n.IsDefined() || n.IsNull()) return;
    const std::string full = prefix_ + key;
    if (!n.IsMap()) fail(n, full, "expected a mapping of keys (a section), got " + describe(n));
    Reader sub(n, full + ".", origin_);
    s.visit(sub);
    sub.reject_unknown();
  }

  void reject_unknown() const {
    std::set<std::string> seen;
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        throw ConfigError(origin_.where(prefix_ + key, kv.first) + ": duplicate key '" + prefix_ + key +
                          "' (merge the two into one)");
      }
      if (known_.count(key)) continue;
      const std::string full = prefix_ + key;
      std::string msg = origin_.where(full, kv.first) + ": unknown key '" + full + "'";
      const std::string near = nearest_key(full);
      msg += near.empty() ? " (see `neftune train --help` for the keys)" : " (did you mean '" + near + "'?)";
      throw ConfigError(msg);
    }
  }

 private:
  static std::string describe(const YAML::Node& n) {
    if (n.IsMap()) return "a mapping";
    if (n.IsSequence()) return "a list";
    if (n.IsNull()) return "null";
    return "'" + n.Scalar() + "'";
  }

  [[noreturn]] void fail(const YAML::Node& n, const std::string& key, const std::string& what) const {
    throw ConfigError(origin_.where(key, n) + ": " + key + ": " + what);
  }

  void parse(const YAML::Node& n, const std::string& key, bool& out) const {
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, out))
      fail(n, key, "expected true or false, got " + describe(n));
  }
  void parse(const YAML::Node& n, const std::string& key, int64_t& out) const {
    if (!n.IsScalar()) fail(n, key, "expected an integer, got " + describe(n));
    const std::string& s = n.Scalar();
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE) {
      // Accept integral floats written like 1e4 or 2000.0.
      char* fend = nullptr;
      const double d = std::strtod(s.c_str(), &fend);
      if (!s.empty() && *fend == '\0' && std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9e18) {
        out = static_cast<int64_t>(d);
        return;
      }
      fail(n, key, "expected an integer, got " + describe(n));
    }
    out = v;
  }
  void parse(const YAML::Node& n, const std::string& key, double& out) const {
    if (!n.IsScalar()) fail(n, key, "expected a number, got " + describe(n));
    const std::string& s = n.Scalar();
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(v)) fail(n, key, "expected a finite number, got " + describe(n));
    out = v;
  }
  void parse(const YAML::Node& n, const std::string& key, std::string& out) const {
    if (!n.IsScalar() || n.IsNull()) fail(n, key, "expected a string, got " + describe(n));
    out = n.Scalar();
  }
  template <class E, std::enable_if_t<IsConfigEnum<E>::value, int> = 0>
  void parse(const YAML::Node& n, const std::string& key, E& out) const {
    if (!n.IsScalar() || !from_string(n.Scalar(), out))
      fail(n, key, "expected one of " + enum_choices<E>() + ", got " + describe(n));
  }
  template <class T>
  void parse(const YAML::Node& n, const std::string& key, std::optional<T>& out) const {
    if (n.IsNull()) {
      out.reset();
      return;
    }
    T v{};
    parse(n, key, v);
    out = v;
  }

  YAML::Node node_;
  std::string prefix_;
  const Origin& origin_;
  std::set<std::string> known_;
};

}  // namespace

namespace detail {

YAML::Node load_yaml(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": invalid YAML: " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap())
    throw ConfigError(source + ": the config must be a mapping of sections (output_dir:, model:, train:, ...)");
  return root;
}

TrainConfig parse_config_node(YAML::Node root, const std::string& source, const std::vector<std::string>& overrides) {
  Origin origin{source, {}};
  for (const auto& assignment : overrides) origin.overridden.insert(apply_override(root, assignment));

  TrainConfig cfg;
  Reader reader(root, "", origin);
  cfg.visit(reader);
  reader.reject_unknown();
  validate(cfg);
  return cfg;
}

}  // namespace detail

TrainConfig parse_config(const std::string& yaml_text, const std::string& source,
                         const std::vector<std::string>& overrides) {
  return detail::parse_config_node(detail::load_yaml(yaml_text, source), source, overrides);
}

TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_config(io::read_input_as<ConfigError>(path, io::Input::config, "config file"), path, overrides);
}

}  // namespace neftune::config
