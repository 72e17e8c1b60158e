#include "trainer/run/checkpoint.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>

#include "config/config.h"
#include "trainer/io/crc32c.h"
#include "trainer/io/safetensors.h"
#include "trainer/io/json_error.h"

namespace neftune::run {
namespace fs = std::filesystem;
using json = nlohmann::json;
using io::CheckpointError;

namespace {

constexpr int kFormatVersion = 1;
const char* kTensorKinds[] = {"param", "exp_avg", "exp_avg_sq"};

// Keys that may change when a run resumes (its length, its checkpointing and logging, how it is
// sharded, whether activations are recomputed); anything else changes what is being trained and makes the checkpoint a different run's.
// The micro-batch split may change too, as long as the global batch (micro_batch_size x
// accumulation_steps x ranks) stays the same: that is what resharding to another world size needs.
bool may_change_on_resume(const std::string& key) {
  static const char* prefixes[] = {"output_dir",         "train.max_steps",        "train.epochs",
                                   "train.eval_every_steps", "train.threads",    "train.micro_batch_size",
                                   "train.accumulation_steps", "train.activation_checkpointing",
                                   "train.loss_chunk_tokens",
                                   "checkpoint.",        "logging.",
                                   "distributed.",       "data.eval",              "data.eval_max_samples"};
  for (const char* p : prefixes)
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

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

std::string tensor_name(const std::string& unit, const char* kind) { return unit + "/" + kind; }

struct UnitMeta {
  std::string name;
  int64_t numel = 0, padded_numel = 0, shard_numel = 0;
  std::vector<std::pair<std::string, std::vector<int64_t>>> params;
};

struct FileSum {
  uint64_t bytes = 0;
  std::string crc;  // io::crc32c_text
};

struct Meta {
  int64_t step = 0, epoch = 0, position = 0, global_batch = 0;
  int world_size = 1, num_shards = 1;
  std::string run_id;                    // "" in checkpoints written before run ids
  std::map<std::string, FileSum> files;  // rank file -> size and checksum (empty before checksums)
  json model;
  std::vector<UnitMeta> units;
};

// Writes a small file and fsyncs it, so a rename that follows publishes complete contents.
void write_synced(const fs::path& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw CheckpointError(path.string() + ": cannot create");
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw CheckpointError(path.string() + ": write failed (disk full?)");
}

Meta read_meta(const std::string& dir) {
  const fs::path path = fs::path(dir) / "meta.json";
  std::ifstream in(path);
  if (!in) throw CheckpointError(path.string() + ": missing (not a checkpoint, or an incomplete one)");
  Meta m;
  try {
    const json j = json::parse(in);
    if (j.value("format", "") != "neftune-checkpoint") throw CheckpointError(path.string() + ": not a neftune checkpoint");
    if (j.at("version").get<int>() != kFormatVersion)
      throw CheckpointError(path.string() + ": format version " + std::to_string(j.at("version").get<int>()) +
                            " is not supported (this build reads " + std::to_string(kFormatVersion) + ")");
    m.step = j.at("step").get<int64_t>();
    m.epoch = j.at("sampler").at("epoch").get<int64_t>();
    m.position = j.at("sampler").at("position").get<int64_t>();
    m.world_size = j.at("world_size").get<int>();
    m.global_batch = j.at("global_batch").get<int64_t>();
    m.num_shards = j.at("num_shards").get<int>();
    m.run_id = j.value("run_id", "");
    if (j.contains("files"))
      for (const auto& [name, f] : j.at("files").items())
        m.files[name] = {f.at("bytes").get<uint64_t>(), f.at("checksum").get<std::string>()};
    m.model = j.at("model");
    for (const auto& u : j.at("units")) {
      UnitMeta um;
      um.name = u.at("name").get<std::string>();
      um.numel = u.at("numel").get<int64_t>();
      um.padded_numel = u.at("padded_numel").get<int64_t>();
      um.shard_numel = u.at("shard_numel").get<int64_t>();
      for (const auto& p : u.at("params")) um.params.emplace_back(p.at("name"), p.at("shape").get<std::vector<int64_t>>());
      if (um.numel < 0 || um.shard_numel <= 0 || um.shard_numel * m.num_shards < um.numel)
        throw CheckpointError(path.string() + ": unit " + um.name + " has an inconsistent size");
      m.units.push_back(std::move(um));
    }
    if (m.num_shards < 1 || m.step < 0) throw CheckpointError(path.string() + ": inconsistent step or shard count");
  } catch (const json::exception& e) {
    throw CheckpointError(path.string() + ": malformed: " + io::json_error(e));
  }
  return m;
}

json unit_json(const dist::FlatUnit& u, int num_shards) {
  json params = json::array();
  for (size_t i = 0; i < u.layout().params.size(); ++i)
    params.push_back({{"name", u.layout().params[i].name},
                      {"shape", u.layout().params[i].shape},
                      {"offset", u.layout().offsets[i]}});
  return {{"name", u.layout().name},
          {"numel", u.layout().numel},
          {"padded_numel", u.layout().padded_numel},
          {"shard_numel", num_shards == 1 ? u.layout().padded_numel : u.layout().shard_numel()},
          {"params", params}};
}

// Model configs are equal when every field but the stored dtype is.
std::string model_difference(json a, json b) {
  a.erase("torch_dtype");
  b.erase("torch_dtype");
  for (const auto& [k, v] : a.items())
    if (!b.contains(k) || b[k] != v) return k + " " + v.dump() + " vs " + (b.contains(k) ? b[k].dump() : "absent");
  return "";
}

// The checkpoint's shard files, opened on first use.
class ShardFiles {
 public:
  ShardFiles(std::string dir, const Meta& m) : dir_(std::move(dir)), m_(m) {}
  const io::SafetensorsFile& get(int q) {
    auto& f = files_[q];
    if (!f) {
      const fs::path p = fs::path(dir_) / rank_file(q, m_.num_shards);
      if (!fs::exists(p)) throw CheckpointError(p.string() + ": missing rank file (the checkpoint is incomplete)");
      f = std::make_unique<io::SafetensorsFile>(p.string());
    }
    return *f;
  }
  // Copies values [lo, hi) of a unit's flat `kind` tensor into dst (dst[0] is value lo).
  void read(const UnitMeta& u, const char* kind, int64_t lo, int64_t hi, const at::Tensor& dst) {
    const int64_t S = u.shard_numel;
    for (int q = static_cast<int>(lo / S); q < m_.num_shards && q * S < hi; ++q) {
      const int64_t a = std::max(lo, q * S), b = std::min(hi, (q + 1) * S);
      if (a >= b) continue;
      get(q).read_range_into(tensor_name(u.name, kind), a - q * S, b - a, dst.narrow(0, a - lo, b - a));
    }
  }

 private:
  std::string dir_;
  const Meta& m_;
  std::map<int, std::unique_ptr<io::SafetensorsFile>> files_;
};

std::vector<fs::path> checkpoints_newest_first(const fs::path& root) {
  std::vector<std::pair<int64_t, fs::path>> found;
  static const std::regex pattern("step-([0-9]+)");
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return {};
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::smatch mt;
    const std::string name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, mt, pattern)) found.emplace_back(std::stoll(mt[1]), e.path());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

// Every rank file's size and CRC-32C against meta.json, for the files q = rank, rank + size, ... (so the
// ranks of a job share the reading). Checkpoints from before checksums have none to check.
void verify_files(const std::string& dir, const Meta& m, int rank, int size) {
  if (m.files.empty()) return;
  for (int q = rank; q < m.num_shards; q += size) {
    const std::string name = rank_file(q, m.num_shards);
    const fs::path p = fs::path(dir) / name;
    const auto it = m.files.find(name);
    if (it == m.files.end()) throw CheckpointError((fs::path(dir) / "meta.json").string() + ": no checksum for " + name);
    uint64_t bytes = 0;
    const std::string crc = io::crc32c_text(io::crc32c_file(p.string(), &bytes));
    if (bytes != it->second.bytes || crc != it->second.crc)
      throw CheckpointError(p.string() + ": corrupt: " + std::to_string(bytes) + " bytes with " + crc + ", meta.json says " +
                            std::to_string(it->second.bytes) + " bytes with " + it->second.crc);
  }
}

// The structure: meta.json and every rank file with every tensor of the right size.
void validate_structure(const std::string& dir, const Meta& m) {
  for (int q = 0; q < m.num_shards; ++q) {
    const fs::path p = fs::path(dir) / rank_file(q, m.num_shards);
    if (!fs::exists(p)) throw CheckpointError(p.string() + ": missing rank file (the checkpoint is incomplete)");
    const io::SafetensorsFile f(p.string());
    for (const auto& u : m.units) {
      for (const char* kind : kTensorKinds) {
        const std::string t = tensor_name(u.name, kind);
        if (!f.contains(t)) throw CheckpointError(p.string() + ": tensor '" + t + "' is missing");
        const auto& e = f.entry(t);
        if (e.dtype != "F32" || e.shape != std::vector<int64_t>{u.shard_numel})
          throw CheckpointError(p.string() + ": tensor '" + t + "' should be F32 [" + std::to_string(u.shard_numel) +
                                "] per meta.json");
      }
    }
  }
}

std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y%m%dT%H%M%SZ", &tm);
  return b;
}

}  // namespace

void validate_checkpoint(const std::string& dir) {
  const Meta m = read_meta(dir);
  validate_structure(dir, m);
  verify_files(dir, m, 0, 1);
}

std::string move_checkpoints_aside(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return "";
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) == 0 || n.rfind(".step-", 0) == 0 || n == "latest" || n == ".latest.tmp") entries.push_back(e.path());
  }
  if (entries.empty()) return "";
  const std::string base = fs::path(root).lexically_normal().string();
  std::string dest = (base.back() == '/' ? base.substr(0, base.size() - 1) : base) + ".replaced-" + utc_stamp();
  if (fs::exists(dest)) {
    int i = 2;
    while (fs::exists(dest + "-" + std::to_string(i))) ++i;
    dest += "-" + std::to_string(i);
  }
  fs::create_directories(dest);
  for (const auto& e : entries) fs::rename(e, fs::path(dest) / e.filename());
  io::fsync_path(dest);
  io::fsync_path(root);
  return dest;
}
Checkpointer::Checkpointer(const config::TrainConfig& cfg, dist::World& world)
    : cfg_(cfg),
      world_(world),
      root_(cfg.checkpoint.dir ? *cfg.checkpoint.dir : (fs::path(cfg.output_dir) / "checkpoints").string()) {}

std::string Checkpointer::save(const TrainProgress& progress, model::ShardedLlama& model,
                               const std::vector<optim::AdamWState>& optimizer, const tok::Tokenizer& tok) {
  const auto t0 = std::chrono::steady_clock::now();
  auto& host = *world_.host;
  const std::string name = step_name(progress.step);
  const fs::path root(root_), final_dir = root / name, tmp = root / ("." + name + ".tmp");
  const auto& units = model.units();
  // Replicated weights are the same on every rank: rank 0 alone writes them, as one shard.
  const int num_shards = units.front()->replicated() ? 1 : world_.size;

  dist::agree(host, [&] {
    if (world_.rank != 0) return;
    fs::create_directories(root);
    for (const auto& e : fs::directory_iterator(root))  // leftovers of saves that were killed
      if (e.path().filename().string().rfind(".step-", 0) == 0) fs::remove_all(e.path());
    fs::create_directories(tmp);
  });
  // This rank's file size and CRC-32C in slots 2q, 2q + 1 (exact in a double: < 2^53), summed onto rank 0.
  at::Tensor sums = at::zeros({2 * static_cast<int64_t>(num_shards)}, at::kDouble);
  dist::agree(host, [&] {
    if (world_.rank >= num_shards) return;
    std::vector<io::SafetensorsWriter::Decl> decls;
    for (auto* u : units)
      for (const char* kind : kTensorKinds)
        decls.push_back({tensor_name(u->layout().name, kind), at::kFloat, {u->params().numel()}});
    io::SafetensorsWriter w((tmp / rank_file(world_.rank, num_shards)).string(), decls,
                            {{"rank", std::to_string(world_.rank)}, {"num_shards", std::to_string(num_shards)},
                             {"step", std::to_string(progress.step)}});
    for (size_t i = 0; i < units.size(); ++i) {
      dist::FlatUnit& u = *units[i];
      const auto& st = optimizer[i];
      const at::Tensor zeros = st.m.defined() ? at::Tensor() : at::zeros_like(u.params());  // before step 1
      w.write(tensor_name(u.layout().name, "param"), u.params());
      w.write(tensor_name(u.layout().name, "exp_avg"), st.m.defined() ? st.m : zeros);
      w.write(tensor_name(u.layout().name, "exp_avg_sq"), st.v.defined() ? st.v : zeros);
    }
    w.finish();
    sums[2 * world_.rank] = static_cast<double>(w.bytes());
    sums[2 * world_.rank + 1] = static_cast<double>(w.crc32c());
  });
  host.all_reduce(sums, dist::ReduceOp::sum)->wait();
  dist::agree(host, [&] {
    if (world_.rank != 0) return;
    json meta = {{"format", "neftune-checkpoint"},
                 {"version", kFormatVersion},
                 {"step", progress.step},
                 {"sampler", {{"epoch", progress.sampler_epoch}, {"position", progress.sampler_position}}},
                 {"world_size", world_.size},
                 {"global_batch", cfg_.train.micro_batch_size * cfg_.train.accumulation_steps * world_.size},
                 {"num_shards", num_shards},
                 {"sharding", std::string(config::to_string(cfg_.distributed.sharding))},
                 {"config_hash", std::to_string(config::config_hash(cfg_))},
                 {"run_id", run_id_},
                 {"files", json::object()},
                 {"model", json::parse(model.config().to_json_text())},
                 {"units", json::array()}};
    for (const auto* u : units) meta["units"].push_back(unit_json(*u, num_shards));
    for (int q = 0; q < num_shards; ++q)
      meta["files"][rank_file(q, num_shards)] = {
          {"bytes", static_cast<uint64_t>(sums[2 * q].item<double>())},
          {"checksum", io::crc32c_text(static_cast<uint32_t>(sums[2 * q + 1].item<double>()))}};
    write_synced(tmp / "config.yaml", config::dump_config(cfg_));
    write_synced(tmp / "config.json", model.config().to_json_text());
    tok.save(tmp.string());
    write_synced(tmp / "meta.json", meta.dump(2) + "\n");
    io::fsync_path(tmp.string());
    // Publish: the new directory appears complete under its final name, or not at all.
    const fs::path old = root / ("." + name + ".old");
    if (fs::exists(final_dir)) fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    io::fsync_path(root.string());
    fs::remove_all(old);
    write_synced(root / ".latest.tmp", name + "\n");
    fs::rename(root / ".latest.tmp", root / "latest");
    io::fsync_path(root.string());
    prune();
  });
  spdlog::info("[ckpt] saved {} ({} shard file(s)) in {:.2f} s", final_dir.string(), num_shards,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return final_dir.string();
}

void Checkpointer::prune() const {
  const auto all = checkpoints_newest_first(root_);
  int64_t kept = 0;
  for (const auto& dir : all) {
    bool ours = true;
    try {
      ours = read_meta(dir.string()).run_id == run_id_;  // another run's checkpoints are never ours to remove
    } catch (const CheckpointError&) {
      ours = false;  // never count (or delete) what we cannot read as a complete checkpoint
    }
    if (!ours) continue;
    if (++kept > cfg_.checkpoint.keep_last) {
      // Hide it first (an atomic rename): a deletion cut short leaves a hidden leftover, never a
      // half-deleted directory under a checkpoint's name.
      const fs::path hidden = dir.parent_path() / ("." + dir.filename().string() + ".deleting");
      fs::rename(dir, hidden);
      fs::remove_all(hidden);
    }
  }
}

std::optional<std::string> Checkpointer::select_resume() {
  const std::string& mode = cfg_.checkpoint.resume;
  if (mode == "never") return std::nullopt;
  auto& host = *world_.host;
  std::string list;  // the candidates, newest first, one per line (rank 0 lists, every rank checks)
  if (world_.rank == 0) {
    if (mode != "auto") {
      list = mode + "\n";
    } else {
      for (const auto& dir : checkpoints_newest_first(root_)) list += dir.string() + "\n";
    }
  }
  std::istringstream candidates(host.broadcast_string(list, 0));
  for (std::string dir; std::getline(candidates, dir);) {
    // Rank 0 checks the structure; then every rank reads its share of the files against their checksums.
    std::string error;
    Meta m;
    try {
      m = read_meta(dir);
      if (world_.rank == 0) validate_structure(dir, m);
    } catch (const CheckpointError& e) {
      error = e.what();
    }
    error = host.broadcast_string(error, 0);
    if (error.empty()) {
      try {
        verify_files(dir, m, world_.rank, world_.size);
      } catch (const CheckpointError& e) {
        error = e.what();
      }
      at::Tensor first = at::scalar_tensor(error.empty() ? world_.size : world_.rank, at::kDouble);
      host.all_reduce(first, dist::ReduceOp::min)->wait();
      const int failed = static_cast<int>(first.item<double>());
      if (failed < world_.size) error = host.broadcast_string(error, failed);
    }
    if (error.empty()) return dir;
    // An explicit checkpoint must be complete; auto falls back to the previous one.
    dist::agree(host, [&] {
      if (mode != "auto") throw CheckpointError(error);
    });
    if (world_.rank == 0) spdlog::warn("[ckpt] ignoring incomplete or damaged checkpoint: {}", error);
  }
  return std::nullopt;
}

void Checkpointer::start_new_run() {
  std::string id;
  if (world_.rank == 0) {
    std::random_device rd;
    const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                       static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    char b[24];
    std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(r));
    id = b;
  }
  run_id_ = world_.host->broadcast_string(id, 0);
  fresh_ = true;
}

std::vector<std::string> Checkpointer::foreign_checkpoints() const {
  std::vector<std::string> out;
  for (const auto& dir : checkpoints_newest_first(root_)) {
    try {
      if (read_meta(dir.string()).run_id != run_id_) out.push_back(dir.filename().string());
    } catch (const CheckpointError&) {
      // Incomplete: a resumed run skipped it (maybe its own, cut short); a fresh run owns nothing there.
      if (fresh_) out.push_back(dir.filename().string());
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

TrainProgress Checkpointer::load(const std::string& dir, model::ShardedLlama& model,
                                 std::vector<optim::AdamWState>& optimizer) {
  TrainProgress p;
  dist::agree(*world_.host, [&] {
    const Meta m = read_meta(dir);
    const std::string meta_path = (fs::path(dir) / "meta.json").string();
    const std::string diff = model_difference(m.model, json::parse(model.config().to_json_text()));
    if (!diff.empty())
      throw CheckpointError(meta_path + ": written for a different model (" + diff +
                            "): resume with the model it was trained from, or set checkpoint.resume: never");
    const auto& units = model.units();
    if (m.units.size() != units.size())
      throw CheckpointError(meta_path + ": has " + std::to_string(m.units.size()) + " units, the model has " +
                            std::to_string(units.size()));
    for (size_t i = 0; i < units.size(); ++i) {
      const auto& l = units[i]->layout();
      bool same = m.units[i].name == l.name && m.units[i].numel == l.numel && m.units[i].params.size() == l.params.size();
      for (size_t k = 0; same && k < l.params.size(); ++k)
        same = m.units[i].params[k].first == l.params[k].name && m.units[i].params[k].second == l.params[k].shape;
      if (!same) throw CheckpointError(meta_path + ": unit '" + m.units[i].name + "' does not match the model's layout");
    }
    const fs::path cfg_path = fs::path(dir) / "config.yaml";
    std::ifstream in(cfg_path);
    std::stringstream ss;
    ss << in.rdbuf();
    const config::TrainConfig written = config::parse_config(ss.str(), cfg_path.string());
    std::string changed;
    for (const auto& d : config::differing_keys(written, cfg_))
      if (!may_change_on_resume(d.substr(0, d.find(':')))) changed += (changed.empty() ? "" : "; ") + d;
    if (!changed.empty())
      throw CheckpointError(dir + ": was written by a different run (" + changed +
                            "): resume with the same config, or set checkpoint.resume: never");
    const int64_t global_batch = cfg_.train.micro_batch_size * cfg_.train.accumulation_steps * world_.size;
    if (global_batch != m.global_batch)
      throw CheckpointError(dir + ": trained with a global batch of " + std::to_string(m.global_batch) +
                            " samples, this run has " + std::to_string(global_batch) +
                            " (micro_batch_size x accumulation_steps x ranks): keep it equal when changing the world size");
    if (m.world_size != world_.size)
      spdlog::info("[ckpt] re-slicing {} from {} to {} ranks", dir, m.world_size, world_.size);

    ShardFiles files(dir, m);
    for (size_t i = 0; i < units.size(); ++i) {
      dist::FlatUnit& u = *units[i];
      const UnitMeta& um = m.units[i];
      const int64_t lo = u.shard_offset(), hi = std::min(lo + u.params().numel(), um.numel);
      auto& st = optimizer[i];
      if (!st.m.defined()) {
        st.m = at::empty_like(u.params());
        st.v = at::empty_like(u.params());
      }
      at::NoGradGuard no_grad;
      const int64_t n = std::max<int64_t>(0, hi - lo);
      for (auto [kind, dst] : {std::pair<const char*, at::Tensor>{"param", u.params()}, {"exp_avg", st.m},
                               {"exp_avg_sq", st.v}}) {
        if (n > 0) files.read(um, kind, lo, hi, dst.narrow(0, 0, n));
        dst.narrow(0, n, dst.numel() - n).zero_();  // padding
      }
      u.mark_params_changed();
    }
    p = {m.step, m.epoch, m.position};
    run_id_ = m.run_id;
  });
  spdlog::info("[ckpt] resumed from {} at step {}", dir, p.step);
  return p;
}

void export_checkpoint(const std::string& dir, const std::string& out_dir, const model::HfWriteOptions& options) {
  validate_checkpoint(dir);
  const Meta m = read_meta(dir);
  const model::LlamaConfig cfg = model::LlamaConfig::from_json_text(m.model.dump(), dir + "/meta.json");
  if (fs::exists(out_dir) && !fs::is_empty(out_dir))
    throw UserError(out_dir + ": exists and is not empty (remove it or choose another output directory)");
  const std::string tmp = out_dir + ".tmp";
  fs::remove_all(tmp);
  ShardFiles files(dir, m);
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
    throw CheckpointError(dir + ": no tensor '" + name + "'");
  };
  model::write_hf_model(tmp, cfg, get, options, true);
  for (const char* f : {"tokenizer.model", "tokenizer.json", "neftune_tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json"})
    if (fs::exists(fs::path(dir) / f)) fs::copy_file(fs::path(dir) / f, fs::path(tmp) / f);
  io::fsync_path(tmp);
  fs::remove_all(out_dir);
  fs::rename(tmp, out_dir);
}

}  // namespace neftune::run
