#include "trainer/model/hf_checkpoint.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "trainer/io/file_read.h"
#include "trainer/io/file_write.h"
#include "trainer/io/json_error.h"
#include "trainer/model/llama.h"

namespace neftune::model {
namespace fs = std::filesystem;
using json = nlohmann::json;

HfCheckpoint::HfCheckpoint(const std::string& dir) : dir_(dir) {
  if (!fs::is_directory(dir))
    throw io::CheckpointError(dir + ": not a directory (model.path must be an HF-format model directory)");
  config_ = LlamaConfig::load((fs::path(dir) / "config.json").string());

  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    auto file = std::make_shared<io::SafetensorsFile>(single.string());
    for (const auto& e : file->header().tensors) files_[e.name] = file;
  } else if (fs::exists(index)) {
    const std::string text =
        io::read_input_as<io::CheckpointError>(index.string(), io::Input::json, "safetensors index");
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      throw io::CheckpointError(index.string() + ": not valid JSON: " + io::json_error(e));
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      throw io::CheckpointError(index.string() + ": missing weight_map");
    std::map<std::string, std::shared_ptr<io::SafetensorsFile>> opened;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) throw io::CheckpointError(index.string() + ": weight_map." + name + " is not a file name");
      const std::string fname = file.get<std::string>();
      if (fname.find('/') != std::string::npos || fname == "..")
        throw io::CheckpointError(index.string() + ": weight_map." + name + " points outside the directory");
      auto& f = opened[fname];
      if (!f) f = std::make_shared<io::SafetensorsFile>((fs::path(dir) / fname).string());
      if (!f->contains(name))
        throw io::CheckpointError(f->path() + ": the index says it holds '" + name + "' but it does not");
      files_[name] = f;
    }
  } else {
    throw io::CheckpointError(dir +
                              ": no model.safetensors or model.safetensors.index.json (only safetensors "
                              "checkpoints are supported)");
  }

  for (const auto& p : all_params(config_)) {
    const auto it = files_.find(p.name);
    if (it == files_.end())
      throw io::CheckpointError(dir + ": tensor '" + p.name + "' is missing (config.json implies it)");
    const auto& e = it->second->entry(p.name);
    if (e.shape != p.shape) {
      std::ostringstream os;
      os << it->second->path() << ": tensor '" << p.name << "' has shape " << at::IntArrayRef(e.shape)
         << " but config.json implies " << at::IntArrayRef(p.shape) << " (checkpoint and config do not match)";
      throw io::CheckpointError(os.str());
    }
  }
  // A decoder-layer tensor the config does not imply (a bias, a q/k norm) would be silently ignored:
  // config.json and the weights describe different models.
  std::set<std::string> expected;
  for (const auto& p : all_params(config_)) expected.insert(p.name);
  for (const auto& [name, file] : files_) {
    if (expected.count(name) || name.rfind("model.layers.", 0) != 0) continue;
    if (name.size() >= 20 && name.compare(name.size() - 20, 20, ".rotary_emb.inv_freq") == 0)
      continue;  // a RoPE buffer
    throw io::CheckpointError(file->path() + ": tensor '" + name +
                              "' is not part of the model config.json describes (" + "model_type " +
                              model_type_name(config_.model_type) + ", attention_bias " +
                              (config_.attention_bias ? "true" : "false") + "): checkpoint and config do not match");
  }
}

namespace {
// A NaN or an infinity in a pretrained weight turns the first step's loss into NaN, which would be
// blamed on the learning rate: it is refused here, naming the tensor.
at::Tensor finite(at::Tensor t, const std::string& dir, const std::string& name) {
  if (!t.is_floating_point()) return t;
  const int64_t finite_count = at::isfinite(t).sum().item<int64_t>();
  if (finite_count != t.numel()) {
    throw io::CheckpointError(dir + ": tensor '" + name + "' holds " + std::to_string(t.numel() - finite_count) +
                              " NaN or infinite value(s): the model's files are damaged (download or export "
                              "them again)");
  }
  return t;
}
}  // namespace

at::Tensor HfCheckpoint::load(const std::string& name) const {
  const auto it = files_.find(name);
  if (it == files_.end()) throw io::CheckpointError(dir_ + ": no tensor '" + name + "'");
  return finite(it->second->load(name), dir_, name);
}

at::Tensor HfCheckpoint::load_range(const std::string& name, int64_t begin, int64_t count) const {
  const auto it = files_.find(name);
  if (it == files_.end()) throw io::CheckpointError(dir_ + ": no tensor '" + name + "'");
  return finite(it->second->load_range(name, begin, count), dir_, name);
}

std::string HfCheckpoint::stored_dtype() const {
  const auto& e = files_.at(kEmbedName)->entry(kEmbedName);
  if (e.dtype == "BF16") return "bfloat16";
  if (e.dtype == "F16") return "float16";
  return "float32";
}

void write_hf_model(const std::string& dir, const LlamaConfig& config,
                    const std::function<at::Tensor(const std::string&)>& get, const HfWriteOptions& options,
                    bool write) {
  const auto params = all_params(config);
  const size_t esize = c10::elementSize(options.dtype);
  // Group consecutive tensors into shards of at most max_shard_bytes (a larger tensor gets its own).
  std::vector<std::vector<size_t>> shards(1);
  int64_t bytes = 0, total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t n = params[i].numel() * static_cast<int64_t>(esize);
    if (!shards.back().empty() && bytes + n > options.max_shard_bytes) {
      shards.emplace_back();
      bytes = 0;
    }
    shards.back().push_back(i);
    bytes += n;
    total += n;
  }
  LlamaConfig out_cfg = config;
  out_cfg.torch_dtype = options.dtype == at::kBFloat16 ? "bfloat16"
                        : options.dtype == at::kHalf   ? "float16"
                                                       : "float32";
  if (write) {
    fs::create_directories(dir);
    io::write_file_atomic((fs::path(dir) / "config.json").string(), out_cfg.to_json_text());
  }
  json weight_map = json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string fname = shards.size() == 1 ? "model.safetensors" : name;
    std::vector<io::SafetensorsWriter::Decl> decls;
    for (const size_t i : shards[s]) decls.push_back({params[i].name, options.dtype, params[i].shape});
    std::unique_ptr<io::SafetensorsWriter> w;
    if (write) {
      w = std::make_unique<io::SafetensorsWriter>((fs::path(dir) / fname).string(), decls,
                                                  std::map<std::string, std::string>{{"format", "pt"}});
    }
    for (const size_t i : shards[s]) {
      const at::Tensor t = get(params[i].name);
      if (w) w->write(params[i].name, t);
      weight_map[params[i].name] = fname;
    }
    if (w) w->finish();
  }
  if (write && shards.size() > 1) {
    const json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    io::write_file_atomic((fs::path(dir) / "model.safetensors.index.json").string(), index.dump(2) + "\n");
  }
  if (write) io::fsync_path(dir);
}

}  // namespace neftune::model
