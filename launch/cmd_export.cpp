// neftune export CHECKPOINT OUT_DIR [--dtype bf16|fp32] [--max-shard-size 5GB]
#include <spdlog/spdlog.h>

#include <cctype>
#include <cmath>
#include <map>

#include "config/errors.h"
#include "launch/commands.h"
#include "trainer/run/checkpoint_export.h"

namespace neftune::launch {
namespace {

// The largest --max-shard-size: HF shards are a few GB; above this a value is a typo (and past 2^63 it
// would not even be a size).
constexpr double kMaxShardBytes = 1e12;

// "5GB", "500MB", "2GiB", "1e9" -> bytes; anything else, or outside [1 byte, 1 TB], is a UserError.
int64_t parse_size(const std::string& text) {
  const std::string usage = "--max-shard-size: '" + text + "' ";
  const std::string example = " (e.g. 5GB, 500MB, 2GiB; at most 1TB)";
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw UserError(usage + "is not a size" + example);
  }
  std::string unit = text.substr(pos);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::map<std::string, double> kScales = {
      {"", 1},      {"B", 1},        {"KB", 1e3},        {"MB", 1e6},           {"GB", 1e9},
      {"TB", 1e12}, {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}, {"TIB", 1099511627776.0}};
  const auto scale = kScales.find(unit);
  // !(x > 0) also catches NaN; the product is compared as a double, before any conversion to an integer.
  if (scale == kScales.end() || !(value > 0) || !std::isfinite(value))
    throw UserError(usage + "is not a size" + example);
  const double bytes = value * scale->second;
  if (bytes < 1 || bytes > kMaxShardBytes) {
    throw UserError(usage + "is " + (bytes < 1 ? "under 1 byte" : "over 1TB") + ": shards must be 1 byte to 1TB" +
                    example);
  }
  return static_cast<int64_t>(bytes);
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
  cmd->add_option("--max-shard-size", o->max_shard,
                  "split the weights into model-0000x-of-0000y above this (B, KB, MB, GB, TB, KiB..TiB; at most 1TB)")
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
