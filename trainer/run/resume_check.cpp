#include "trainer/run/resume_check.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/config.h"
#include "config/errors.h"
#include "trainer/io/file_read.h"

namespace neftune::run {
namespace fs = std::filesystem;
using json = nlohmann::json;
using io::CheckpointError;

namespace {

// Model configs are equal when every field but the stored dtype is. Every difference is listed (one
// changed model.init key changes several derived fields: dim moves hidden_size and head_dim).
std::string model_difference(json a, json b) {
  a.erase("torch_dtype");
  b.erase("torch_dtype");
  std::string out;
  for (const auto& [k, v] : a.items()) {
    if (!b.contains(k) || b[k] != v)
      out += (out.empty() ? "" : ", ") + k + " " + v.dump() + " vs " + (b.contains(k) ? b[k].dump() : "absent");
  }
  for (const auto& [k, v] : b.items())
    if (!a.contains(k)) out += (out.empty() ? "" : ", ") + k + " absent vs " + v.dump();
  return out;
}

void check_same_model(const std::string& meta_path, const ckpt::Meta& m, const model::ShardedLlama& model) {
  const std::string diff = model_difference(m.model, json::parse(model.config().to_json_text()));
  if (!diff.empty()) {
    throw CheckpointError(meta_path + ": written for a different model (checkpoint vs this run: " + diff +
                          "): resume with the model it was trained from (model.path, model.init), or set "
                          "checkpoint.resume: never");
  }
  const auto& units = model.units();
  if (m.units.size() != units.size()) {
    throw CheckpointError(meta_path + ": has " + std::to_string(m.units.size()) + " units, the model has " +
                          std::to_string(units.size()));
  }
  for (size_t i = 0; i < units.size(); ++i) {
    const auto& l = units[i]->layout();
    bool same = m.units[i].name == l.name && m.units[i].numel == l.numel && m.units[i].params.size() == l.params.size();
    for (size_t k = 0; same && k < l.params.size(); ++k)
      same = m.units[i].params[k].first == l.params[k].name && m.units[i].params[k].second == l.params[k].shape;
    if (!same) throw CheckpointError(meta_path + ": unit '" + m.units[i].name + "' does not match the model's layout");
  }
}

void check_same_run(const std::string& dir, const config::TrainConfig& cfg) {
  const fs::path cfg_path = fs::path(dir) / "config.yaml";
  const config::TrainConfig written = config::parse_config(
      io::read_input_as<CheckpointError>(cfg_path.string(), io::Input::config, "checkpoint's config.yaml"),
      cfg_path.string());
  std::string changed;
  for (const auto& d : config::differing_keys(written, cfg))
    if (!config::may_change_on_resume(d.substr(0, d.find(':')))) changed += (changed.empty() ? "" : "; ") + d;
  if (!changed.empty()) {
    throw CheckpointError(dir + ": was written by a different run (" + changed +
                          "): resume with the same config, or set checkpoint.resume: never");
  }
}

}  // namespace

void check_resume_compatible(const std::string& dir, const ckpt::Meta& m, const config::TrainConfig& cfg,
                             const model::ShardedLlama& model, int world_size) {
  check_same_model((fs::path(dir) / "meta.json").string(), m, model);
  check_same_run(dir, cfg);
  const int64_t global_batch = cfg.train.micro_batch_size * cfg.train.accumulation_steps * world_size;
  if (global_batch != m.global_batch) {
    throw CheckpointError(
        dir + ": trained with a global batch of " + std::to_string(m.global_batch) + " samples, this run has " +
        std::to_string(global_batch) +
        " (micro_batch_size x accumulation_steps x ranks): keep it equal when changing the world size");
  }
}

}  // namespace neftune::run
