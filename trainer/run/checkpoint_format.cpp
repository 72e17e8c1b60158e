#include "trainer/run/checkpoint_format.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>

#include "config/errors.h"
#include "trainer/io/crc32c.h"
#include "trainer/io/file_read.h"
#include "trainer/io/json_error.h"

namespace neftune::run::ckpt {
namespace fs = std::filesystem;
using json = nlohmann::json;
using io::CheckpointError;

std::string step_name(int64_t step) {
  char b[32];
  std::snprintf(b, sizeof b, "step-%08lld", static_cast<long long>(step));
  return b;
}

std::string rank_file(int q, int n) {
  char b[64];
  std::snprintf(b, sizeof b, "rank-%05d-of-%05d.safetensors", q, n);
  return b;
}

namespace {
std::string meta_checksum(const json& meta_without_checksum) {
  const std::string text = meta_without_checksum.dump();
  return io::crc32c_text(io::crc32c_extend(0, text.data(), text.size()));
}
}  // namespace

Meta read_meta(const std::string& dir) {
  const fs::path path = fs::path(dir) / "meta.json";
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw CheckpointError(path.string() + ": missing (not a checkpoint, or an incomplete one)");
  const std::string text = io::read_input_as<CheckpointError>(path.string(), io::Input::json, "checkpoint meta.json");
  Meta m;
  try {
    json j = json::parse(text);
    if (j.is_object() && j.contains("checksum")) {
      const std::string written = j.at("checksum").get<std::string>();
      j.erase("checksum");
      if (meta_checksum(j) != written) {
        throw CheckpointError(path.string() + ": its content does not match its checksum (edited or damaged): " +
                              "a checkpoint's meta.json is not edited by hand");
      }
    }
    if (j.value("format", "") != "neftune-checkpoint")
      throw CheckpointError(path.string() + ": not a neftune checkpoint");
    if (j.at("version").get<int>() != kFormatVersion) {
      throw CheckpointError(path.string() + ": format version " + std::to_string(j.at("version").get<int>()) +
                            " is not supported (this build reads " + std::to_string(kFormatVersion) + ")");
    }
    m.step = j.at("step").get<int64_t>();
    m.epoch = j.at("sampler").at("epoch").get<int64_t>();
    m.position = j.at("sampler").at("position").get<int64_t>();
    m.world_size = j.at("world_size").get<int>();
    m.global_batch = j.at("global_batch").get<int64_t>();
    m.num_shards = j.at("num_shards").get<int>();
    m.run_id = j.value("run_id", "");
    if (j.contains("files")) {
      for (const auto& [name, f] : j.at("files").items())
        m.files[name] = {f.at("bytes").get<uint64_t>(), f.at("checksum").get<std::string>()};
    }
    m.model = j.at("model");
    for (const auto& u : j.at("units")) {
      UnitMeta um;
      um.name = u.at("name").get<std::string>();
      um.numel = u.at("numel").get<int64_t>();
      um.padded_numel = u.at("padded_numel").get<int64_t>();
      um.shard_numel = u.at("shard_numel").get<int64_t>();
      for (const auto& p : u.at("params"))
        um.params.emplace_back(p.at("name"), p.at("shape").get<std::vector<int64_t>>());
      if (um.numel < 0 || um.shard_numel <= 0 || um.shard_numel * m.num_shards < um.numel)
        throw CheckpointError(path.string() + ": unit " + um.name + " has an inconsistent size");
      m.units.push_back(std::move(um));
    }
    if (j.contains("train_data")) {
      const json& d = j.at("train_data");
      m.train_data =
          DataSum{d.at("path").get<std::string>(), d.at("bytes").get<uint64_t>(), d.at("checksum").get<std::string>()};
    }
    if (m.num_shards < 1 || m.step < 0) throw CheckpointError(path.string() + ": inconsistent step or shard count");
    if (m.epoch < 0 || m.position < 0) {
      throw CheckpointError(path.string() + ": sampler epoch " + std::to_string(m.epoch) + ", position " +
                            std::to_string(m.position) + " is not a place in the data");
    }
    static const std::regex kStepDir("step-([0-9]+)");
    std::smatch mt;
    fs::path named = fs::path(dir).lexically_normal();
    if (named.filename().empty()) named = named.parent_path();  // "…/step-00000020/"
    const std::string name = named.filename().string();
    if (std::regex_match(name, mt, kStepDir) && (mt[1].length() > 18 || std::stoll(mt[1]) != m.step)) {
      throw CheckpointError(path.string() + ": says step " + std::to_string(m.step) + " in a directory named " + name +
                            " (edited or damaged)");
    }
  } catch (const json::exception& e) {
    throw CheckpointError(path.string() + ": malformed: " + io::json_error(e));
  }
  return m;
}

namespace {

fs::path existing_rank_file(const std::string& dir, int q, int n) {
  fs::path p = fs::path(dir) / rank_file(q, n);
  if (!fs::exists(p)) throw CheckpointError(p.string() + ": missing rank file (the checkpoint is incomplete)");
  return p;
}

json unit_json(const dist::FlatUnit& u, int num_shards) {
  json params = json::array();
  for (size_t i = 0; i < u.layout().params.size(); ++i) {
    params.push_back({{"name", u.layout().params[i].name},
                      {"shape", u.layout().params[i].shape},
                      {"offset", u.layout().offsets[i]}});
  }
  return {{"name", u.layout().name},
          {"numel", u.layout().numel},
          {"padded_numel", u.layout().padded_numel},
          {"shard_numel", num_shards == 1 ? u.layout().padded_numel : u.layout().shard_numel()},
          {"params", params}};
}

}  // namespace

json meta_json(const Meta& m, const std::vector<dist::FlatUnit*>& units, const std::string& sharding,
               const std::string& config_hash) {
  json meta = {{"format", "neftune-checkpoint"},
               {"version", kFormatVersion},
               {"step", m.step},
               {"sampler", {{"epoch", m.epoch}, {"position", m.position}}},
               {"world_size", m.world_size},
               {"global_batch", m.global_batch},
               {"num_shards", m.num_shards},
               {"sharding", sharding},
               {"config_hash", config_hash},
               {"run_id", m.run_id},
               {"files", json::object()},
               {"model", m.model},
               {"units", json::array()}};
  for (const auto* u : units) meta["units"].push_back(unit_json(*u, m.num_shards));
  for (const auto& [name, f] : m.files) meta["files"][name] = {{"bytes", f.bytes}, {"checksum", f.crc}};
  if (m.train_data) {
    meta["train_data"] = {
        {"path", m.train_data->path}, {"bytes", m.train_data->bytes}, {"checksum", m.train_data->crc}};
  }
  meta["checksum"] = meta_checksum(meta);
  return meta;
}

const io::SafetensorsFile& ShardFiles::get(int q) {
  auto& f = files_[q];
  if (!f) {
    f = std::make_unique<io::SafetensorsFile>(existing_rank_file(dir_, q, m_.num_shards).string());
  }
  return *f;
}

void ShardFiles::read(const UnitMeta& u, const char* kind, int64_t lo, int64_t hi, const at::Tensor& dst) {
  const int64_t S = u.shard_numel;
  for (int q = static_cast<int>(lo / S); q < m_.num_shards && q * S < hi; ++q) {
    const int64_t a = std::max(lo, q * S), b = std::min(hi, (q + 1) * S);
    if (a >= b) continue;
    get(q).read_range_into(tensor_name(u.name, kind), a - q * S, b - a, dst.narrow(0, a - lo, b - a));
  }
}

std::vector<fs::path> checkpoints_newest_first(const fs::path& root) {
  std::vector<std::pair<int64_t, fs::path>> found;
  static const std::regex kPattern("step-([0-9]+)");
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return {};
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::smatch mt;
    const std::string name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, mt, kPattern)) found.emplace_back(std::stoll(mt[1]), e.path());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<fs::path> out;
  out.reserve(found.size());
  for (auto& f : found) out.push_back(f.second);
  return out;
}

void verify_files(const std::string& dir, const Meta& m, int rank, int size) {
  if (m.files.empty()) return;
  for (int q = rank; q < m.num_shards; q += size) {
    const std::string name = rank_file(q, m.num_shards);
    const fs::path p = fs::path(dir) / name;
    const auto it = m.files.find(name);
    if (it == m.files.end())
      throw CheckpointError((fs::path(dir) / "meta.json").string() + ": no checksum for " + name);
    uint64_t bytes = 0;
    const std::string crc = io::crc32c_text(io::crc32c_file(p.string(), &bytes));
    if (bytes != it->second.bytes || crc != it->second.crc) {
      throw CheckpointError(p.string() + ": corrupt: " + std::to_string(bytes) + " bytes with " + crc +
                            ", meta.json says " + std::to_string(it->second.bytes) + " bytes with " + it->second.crc);
    }
  }
}

void validate_structure(const std::string& dir, const Meta& m) {
  for (int q = 0; q < m.num_shards; ++q) {
    const fs::path p = existing_rank_file(dir, q, m.num_shards);
    const io::SafetensorsFile f(p.string());
    for (const auto& u : m.units) {
      for (const char* kind : kTensorKinds) {
        const std::string t = tensor_name(u.name, kind);
        if (!f.contains(t)) throw CheckpointError(p.string() + ": tensor '" + t + "' is missing");
        const auto& e = f.entry(t);
        if (e.dtype != "F32" || e.shape != std::vector<int64_t>{u.shard_numel}) {
          throw CheckpointError(p.string() + ": tensor '" + t + "' should be F32 [" + std::to_string(u.shard_numel) +
                                "] per meta.json");
        }
      }
    }
  }
}

}  // namespace neftune::run::ckpt

namespace neftune::run {

void validate_checkpoint(const std::string& dir) {
  const ckpt::Meta m = ckpt::read_meta(dir);
  ckpt::validate_structure(dir, m);
  ckpt::verify_files(dir, m, 0, 1);
}

}  // namespace neftune::run
