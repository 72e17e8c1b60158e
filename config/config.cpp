// The one place that parses YAML. Each visitor below walks TrainConfig::visit().
#include "config/config.h"
#include "config/job.h"
#include "config/size_limit.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace neftune::config {
namespace {

// Shortest decimal text that reads back as exactly `value`.
std::string format_double(double value) {
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
  std::string source;                 // file name or "text"
  std::set<std::string> overridden;   // dotted keys set by --set
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
  void operator()(const char* key, T& value, const char* /*doc*/) {
    known_.insert(key);
    const YAML::Node n = node_[key];
    if (!n.IsDefined()) return;
    parse(n, prefix_ + key, value);
  }

  template <class S>
  void section(const char* key, S& s, const char* /*doc*/) {
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
      if (!seen.insert(key).second)
        throw ConfigError(origin_.where(prefix_ + key, kv.first) + ": duplicate key '" + prefix_ + key +
                          "' (merge the two into one)");
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

// Writes YAML with each field's doc as a comment.
class Writer {
 public:
  explicit Writer(YAML::Emitter& out) : out_(out) {}
  template <class T>
  void operator()(const char* key, const T& value, const char* doc) {
    out_ << YAML::Key << key << YAML::Value;
    const std::string text = format_value(value);
    if (text == "null") {
      out_ << YAML::Null;
    } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::optional<std::string>>) {
      out_ << YAML::DoubleQuoted << text;
    } else {
      out_ << text;
    }
    out_ << YAML::Comment(doc);
  }
  template <class S>
  void section(const char* key, const S& s, const char* doc) {
    out_ << YAML::Key << key << YAML::Comment(doc) << YAML::Value << YAML::BeginMap;
    Writer sub(out_);
    const_cast<S&>(s).visit(sub);
    out_ << YAML::EndMap;
  }

 private:
  YAML::Emitter& out_;
};

// Collects (key, default, doc) rows.
class Describer {
 public:
  struct Row {
    std::string key, value, doc;
  };
  explicit Describer(std::string prefix = "") : prefix_(std::move(prefix)) {}
  template <class T>
  void operator()(const char* key, const T& value, const char* doc) {
    rows.push_back({prefix_ + key, format_value(value), doc});
  }
  template <class S>
  void section(const char* key, const S& s, const char* /*doc*/) {
    Describer sub(prefix_ + key + ".");
    const_cast<S&>(s).visit(sub);
    rows.insert(rows.end(), sub.rows.begin(), sub.rows.end());
  }
  std::vector<Row> rows;

 private:
  std::string prefix_;
};

std::vector<Describer::Row> describe(const TrainConfig& cfg) {
  Describer d;
  const_cast<TrainConfig&>(cfg).visit(d);
  return d.rows;
}

std::vector<Describer::Row> describe_defaults() { return describe(TrainConfig{}); }

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string leaf(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// Applies "a.b=value" onto the YAML tree; returns the dotted key.
std::string apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("--set " + assignment + ": expected key=value, e.g. --set train.lr=1e-4");
  const std::string key = assignment.substr(0, eq);
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

}  // namespace

std::vector<std::string> all_keys() {
  std::vector<std::string> keys;
  for (const auto& row : describe_defaults()) keys.push_back(row.key);
  return keys;
}

std::string nearest_key(const std::string& key) {
  const auto keys = all_keys();
  for (const auto& k : keys)
    if (leaf(k) == leaf(key)) return k;
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& k : keys) {
    const size_t d = std::min(edit_distance(key, k), edit_distance(leaf(key), leaf(k)) + 1);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best_d <= std::max<size_t>(3, leaf(key).size() / 3) ? best : "";
}

namespace {

YAML::Node load_yaml(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": invalid YAML: " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw ConfigError(source + ": the config must be a mapping of sections (output_dir:, model:, train:, ...)");
  return root;
}

// The typed parse of an already loaded tree (so callers that edit the tree keep its line numbers).
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

}  // namespace

TrainConfig parse_config(const std::string& yaml_text, const std::string& source,
                         const std::vector<std::string>& overrides) {
  return parse_config_node(load_yaml(yaml_text, source), source, overrides);
}

TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open config file (check the path)");
  // At most one byte over the limit is read, so a huge file (or an endless device) costs nothing.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw ConfigError(path + ": cannot read config file");
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    throw ConfigError(path + ": config file is " + (ec ? "larger than" : format_size(size) + ", over") +
                      " the limit of " + format_size(kMaxConfigBytes) +
                      " (a config is a few KB: check that this is the config file)");
  }
  return parse_config(text, path, overrides);
}

std::string dump_config(const TrainConfig& cfg) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  Writer writer(out);
  const_cast<TrainConfig&>(cfg).visit(writer);
  out << YAML::EndMap;
  return std::string("# neftune effective config (all keys; defaults included)\n") + out.c_str() + "\n";
}

std::vector<std::pair<std::string, std::string>> key_values(const TrainConfig& cfg) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : describe(cfg)) out.emplace_back(row.key, row.value);
  return out;
}

std::vector<std::string> differing_keys(const TrainConfig& a, const TrainConfig& b) {
  const auto ra = describe(a), rb = describe(b);
  std::vector<std::string> out;
  for (size_t i = 0; i < ra.size(); ++i)
    if (ra[i].value != rb[i].value) out.push_back(ra[i].key + ": " + ra[i].value + " -> " + rb[i].value);
  return out;
}

uint64_t config_hash(const TrainConfig& cfg) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : dump_config(cfg)) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string describe_keys() {
  const auto rows = describe_defaults();
  size_t wk = 0, wv = 0;
  for (const auto& r : rows) {
    wk = std::max(wk, r.key.size());
    wv = std::max(wv, r.value.size());
  }
  std::string out;
  for (const auto& r : rows) {
    out += "  " + r.key + std::string(wk - r.key.size() + 2, ' ') + r.value +
           std::string(wv - r.value.size() + 2, ' ') + r.doc + "\n";
  }
  return out;
}

std::vector<std::vector<std::string>> JobSpec::combinations() const {
  std::vector<std::vector<std::string>> out{{}};
  for (const auto& [key, values] : sweep) {
    std::vector<std::vector<std::string>> next;
    for (const auto& prefix : out)
      for (const auto& v : values) {
        auto c = prefix;
        c.push_back(key + "=" + v);
        next.push_back(std::move(c));
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
  const YAML::Node root = load_yaml(yaml_text, source);
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
  for (const auto& combo : job.combinations()) parse_config_node(YAML::Clone(rest), source, combo);
  return job;
}

}  // namespace neftune::config
