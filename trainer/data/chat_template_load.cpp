#include "trainer/data/chat_template_load.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/errors.h"
#include "trainer/io/file_read.h"
#include "trainer/io/json_error.h"

namespace neftune::data {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

[[noreturn]] void cannot_tell(const std::string& key, const std::string& why) {
  throw UserError(key + ": auto: " + why + ": set " + key + " to the model's template (" + chat_family_names() + ")");
}

std::string read_text(const fs::path& p) {
  if (p.filename() == "tokenizer_config.json") return io::read_input(p.string(), io::Input::json, "tokenizer config");
  return io::read_input(p.string(), io::Input::tokenizer, "chat template");
}

// bos_token / eos_token: "<s>", {"content": "<s>", ...} or null.
std::string token_text(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return "";
  const json& t = cfg[key];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
  return "";
}

}  // namespace

ChatTemplate load_chat_template(const std::string& dir_or_file, const std::string& key) {
  fs::path dir = dir_or_file;
  if (!fs::is_directory(dir)) dir = dir.parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir)) cannot_tell(key, dir_or_file + " is not a directory");
  const fs::path config = dir / "tokenizer_config.json", jinja_file = dir / "chat_template.jinja";
  json cfg = json::object();
  if (fs::exists(config)) {
    try {
      cfg = json::parse(read_text(config));
    } catch (const json::exception& e) {
      throw UserError(config.string() + ": not valid JSON: " + io::json_error(e));
    }
    if (!cfg.is_object()) throw UserError(config.string() + ": not a JSON object");
  }
  std::string jinja, source;
  if (fs::exists(jinja_file)) {
    jinja = read_text(jinja_file);
    source = jinja_file.string();
  } else if (cfg.contains("chat_template")) {
    source = config.string();
    const json& t = cfg["chat_template"];
    if (t.is_string()) jinja = t.get<std::string>();
    if (t.is_array()) {  // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
      for (const json& named : t) {
        if (named.is_object() && named.value("name", "") == "default" && named.contains("template") &&
            named["template"].is_string())
          jinja = named["template"].get<std::string>();
      }
    }
    if (jinja.empty())
      cannot_tell(key, source + ": chat_template is not a template string (nor a list with a \"default\")");
  } else {
    cannot_tell(key, fs::exists(config) ? config.string() + " has no chat_template"
                                        : dir.string() + " has no tokenizer_config.json or chat_template.jinja");
  }
  return recognise_chat_template(jinja, token_text(cfg, "bos_token"), token_text(cfg, "eos_token"), source);
}

ChatTemplate resolve_chat_template(const std::string& name, const std::optional<std::string>& dir,
                                   const std::string& key) {
  if (name != "auto") {
    const auto family = chat_family_from_string(name);
    if (!family) throw UserError(key + ": '" + name + "' is not one of auto | " + chat_family_names());
    return builtin_chat_template(*family);
  }
  if (!dir) cannot_tell(key, "no tokenizer.path or model.path to read a chat_template from");
  return load_chat_template(*dir, key);
}

}  // namespace neftune::data
