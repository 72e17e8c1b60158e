// Writing a config as YAML (`--print-config`, output_dir/config.yaml), each key with its doc as a comment.
#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include "config/format_value.h"

namespace neftune::config {
namespace {

// Writes YAML with each field's doc as a comment.
class Writer {
 public:
  explicit Writer(YAML::Emitter& out) : out_(out) {}
  template <class T>
  void operator()(const char* key, const T& value, const char* doc, Resume /*resume*/ = Resume::must_match) {
    out_ << YAML::Key << key << YAML::Value;
    const std::string text = detail::format_value(value);
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
  void section(const char* key, const S& s, const char* doc, Resume /*resume*/ = Resume::must_match) {
    out_ << YAML::Key << key << YAML::Comment(doc) << YAML::Value << YAML::BeginMap;
    Writer sub(out_);
    const_cast<S&>(s).visit(sub);
    out_ << YAML::EndMap;
  }

 private:
  YAML::Emitter& out_;
};

}  // namespace

std::string dump_config(const TrainConfig& cfg) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  Writer writer(out);
  const_cast<TrainConfig&>(cfg).visit(writer);
  out << YAML::EndMap;
  return std::string("# neftune effective config (all keys; defaults included)\n") + out.c_str() + "\n";
}

}  // namespace neftune::config
