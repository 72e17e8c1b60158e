// neftune export CHECKPOINT OUT_DIR [--dtype bf16|fp32] [--max-shard-size 5GB]
#include <spdlog/spdlog.h>

#include <cctype>

#include "config/errors.h"
#include "launch/commands.h"
#include "trainer/run/checkpoint.h"

namespace neftune::launch {
namespace {

// "5GB", "500MB", "1e9" -> bytes.
int64_t parse_size(const std::string& text) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw UserError("--max-shard-size: '" + text + "' is not a size (e.g. 5GB, 500MB)");
  }
  std::string unit = text.substr(pos);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const double scale = unit.empty() || unit == "B" ? 1 : unit == "KB" ? 1e3 : unit == "MB" ? 1e6 : unit == "GB" ? 1e9 : -1;
  if (scale < 0 || value <= 0) throw UserError("--max-shard-size: '" + text + "' is not a size (e.g. 5GB, 500MB)");
  return static_cast<int64_t>(value * scale);
}

}  // namespace

Action add_export_command(CLI::App& app, dist::World& world) {
  struct Opts {
    std::string checkpoint, out, dtype = "fp32", max_shard = "5GB";
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("export", "Gather a sharded checkpoint into an HF-format model directory");
  cmd->add_option("checkpoint", o->checkpoint, "a checkpoint directory (…/checkpoints/step-00000020)")->required();
  cmd->add_option("out_dir", o->out, "the HF-format directory to create")->required();
  cmd->add_option("--dtype", o->dtype, "stored dtype")->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  cmd->add_option("--max-shard-size", o->max_shard, "split the weights into model-0000x-of-0000y above this")
      ->capture_default_str();
  return [o, &world]() {
    if (world.rank != 0) return kExitOk;
    model::HfWriteOptions opts;
    opts.dtype = o->dtype == "bf16" ? at::kBFloat16 : at::kFloat;
    opts.max_shard_bytes = parse_size(o->max_shard);
    run::export_checkpoint(o->checkpoint, o->out, opts);
    spdlog::info("[export] {} -> {} ({})", o->checkpoint, o->out, o->dtype);
    return kExitOk;
  };
}

}  // namespace neftune::launch
