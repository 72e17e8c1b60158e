#include "trainer/run/checkpoint_export.h"

#include <filesystem>

#include "config/errors.h"
#include "trainer/io/file_write.h"
#include "trainer/run/checkpoint_format.h"

namespace neftune::run {
namespace fs = std::filesystem;

void export_checkpoint(const std::string& dir, const std::string& out_dir, const model::HfWriteOptions& options) {
  validate_checkpoint(dir);
  const ckpt::Meta m = ckpt::read_meta(dir);
  const model::LlamaConfig cfg = model::LlamaConfig::from_json_text(m.model.dump(), dir + "/meta.json");
  if (fs::exists(out_dir) && !fs::is_empty(out_dir))
    throw UserError(out_dir + ": exists and is not empty (remove it or choose another output directory)");
  const std::string tmp = out_dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  if (!ec) fs::create_directories(tmp, ec);
  if (ec) {
    throw UserError(out_dir + ": cannot create the output directory (" + tmp + ": " + ec.message() +
                    "): choose a directory this user can write");
  }
  ckpt::ShardFiles files(dir, m);
  int current = -1;
  at::Tensor flat;
  auto get = [&](const std::string& name) -> at::Tensor {
    for (size_t u = 0; u < m.units.size(); ++u) {
      int64_t offset = 0;
      for (const auto& [pname, shape] : m.units[u].params) {
        int64_t numel = 1;
        for (const int64_t s : shape) numel *= s;
        if (pname == name) {
          if (static_cast<int>(u) != current) {  // one unit in memory at a time
            flat = at::empty({m.units[u].numel}, at::kFloat);
            files.read(m.units[u], "param", 0, m.units[u].numel, flat);
            current = static_cast<int>(u);
          }
          return flat.narrow(0, offset, numel).view(shape);
        }
        offset += numel;
      }
    }
    throw io::CheckpointError(dir + ": no tensor '" + name + "'");
  };
  model::write_hf_model(tmp, cfg, get, options, true);
  for (const char* f : {"tokenizer.model", "tokenizer.json", "neftune_tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json"})
    if (fs::exists(fs::path(dir) / f)) io::copy_file_atomic((fs::path(dir) / f).string(), (fs::path(tmp) / f).string());
  io::fsync_path(tmp);
  fs::remove_all(out_dir);
  fs::rename(tmp, out_dir);
}

}  // namespace neftune::run
