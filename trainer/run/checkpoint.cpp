#include "trainer/run/checkpoint.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "config/config.h"
#include "trainer/io/crc32c.h"
#include "trainer/io/file_write.h"
#include "trainer/io/safetensors.h"
#include "trainer/run/checkpoint_format.h"
#include "trainer/run/resume_check.h"

namespace neftune::run {
namespace fs = std::filesystem;
using json = nlohmann::json;
using ckpt::kTensorKinds;
using ckpt::rank_file;
using ckpt::tensor_name;
using io::CheckpointError;

namespace {

std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y%m%dT%H%M%SZ", &tm);
  return b;
}

}  // namespace

std::string move_checkpoints_aside(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return "";
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) == 0 || n.rfind(".step-", 0) == 0 || n == "latest" || n == ".latest.tmp")
      entries.push_back(e.path());
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
  const std::string name = ckpt::step_name(progress.step);
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
  try {
    write_and_publish(progress, model, optimizer, tok, name, num_shards);
  } catch (...) {
    // A save cut short before its rename leaves partial files in tmp: removed now, so that they do not
    // hold the space (a full disk is the likely cause) that the next save needs.
    std::error_code ec;
    if (world_.rank == 0) fs::remove_all(tmp, ec);
    throw;
  }
  spdlog::info("[ckpt] saved {} ({} shard file(s)) in {:.2f} s", final_dir.string(), num_shards,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return final_dir.string();
}

void Checkpointer::write_and_publish(const TrainProgress& progress, model::ShardedLlama& model,
                                     const std::vector<optim::AdamWState>& optimizer, const tok::Tokenizer& tok,
                                     const std::string& name, int num_shards) {
  auto& host = *world_.host;
  const fs::path root(root_), final_dir = root / name, tmp = root / ("." + name + ".tmp");
  const auto& units = model.units();
  // This rank's file size and CRC-32C in slots 2q, 2q + 1 (exact in a double: < 2^53), summed onto rank 0.
  at::Tensor sums = at::zeros({2 * static_cast<int64_t>(num_shards)}, at::kDouble);
  dist::agree(host, [&] {
    if (world_.rank >= num_shards) return;
    std::vector<io::SafetensorsWriter::Decl> decls;
    for (auto* u : units) {
      for (const char* kind : kTensorKinds)
        decls.push_back({tensor_name(u->layout().name, kind), at::kFloat, {u->params().numel()}});
    }
    io::SafetensorsWriter w((tmp / rank_file(world_.rank, num_shards)).string(), decls,
                            {{"rank", std::to_string(world_.rank)},
                             {"num_shards", std::to_string(num_shards)},
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
    sums[int64_t{2} * world_.rank] = static_cast<double>(w.bytes());
    sums[int64_t{2} * world_.rank + 1] = static_cast<double>(w.crc32c());
  });
  host.all_reduce(sums, dist::ReduceOp::sum)->wait();
  dist::agree(host, [&] {
    if (world_.rank != 0) return;
    ckpt::Meta m;
    m.step = progress.step;
    m.epoch = progress.sampler_epoch;
    m.position = progress.sampler_position;
    m.world_size = world_.size;
    m.global_batch = cfg_.train.micro_batch_size * cfg_.train.accumulation_steps * world_.size;
    m.num_shards = num_shards;
    m.run_id = run_id_;
    m.train_data = train_data_;
    m.model = json::parse(model.config().to_json_text());
    for (int q = 0; q < num_shards; ++q) {
      m.files[rank_file(q, num_shards)] = {
          static_cast<uint64_t>(sums[int64_t{2} * q].item<double>()),
          io::crc32c_text(static_cast<uint32_t>(sums[int64_t{2} * q + 1].item<double>()))};
    }
    const json meta = ckpt::meta_json(m, units, std::string(config::to_string(cfg_.distributed.sharding)),
                                      std::to_string(config::config_hash(cfg_)));
    io::write_file_atomic((tmp / "config.yaml").string(), config::dump_config(cfg_));
    io::write_file_atomic((tmp / "config.json").string(), model.config().to_json_text());
    tok.save(tmp.string());
    io::write_file_atomic((tmp / "meta.json").string(), meta.dump(2) + "\n");
    io::fsync_path(tmp.string());
    // Publish: the new directory appears complete under its final name, or not at all.
    const fs::path old = root / ("." + name + ".old");
    if (fs::exists(final_dir)) fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    io::fsync_path(root.string());
    fs::remove_all(old);
    io::write_file_atomic((root / "latest").string(), name + "\n");
    prune();
  });
}

void Checkpointer::prune() const {
  const auto all = ckpt::checkpoints_newest_first(root_);
  int64_t kept = 0;
  for (const auto& dir : all) {
    bool ours = true;
    try {
      ours = ckpt::read_meta(dir.string()).run_id == run_id_;  // another run's checkpoints are never ours to remove
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
      for (const auto& dir : ckpt::checkpoints_newest_first(root_)) list += dir.string() + "\n";
    }
  }
  std::istringstream candidates(host.broadcast_string(list, 0));
  for (std::string dir; std::getline(candidates, dir);) {
    // Rank 0 checks the structure; then every rank reads its share of the files against their checksums.
    std::string error;
    ckpt::Meta m;
    try {
      m = ckpt::read_meta(dir);
      if (world_.rank == 0) ckpt::validate_structure(dir, m);
    } catch (const CheckpointError& e) {
      error = e.what();
    }
    error = host.broadcast_string(error, 0);
    if (error.empty()) {
      try {
        ckpt::verify_files(dir, m, world_.rank, world_.size);
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
  for (const auto& dir : ckpt::checkpoints_newest_first(root_)) {
    try {
      if (ckpt::read_meta(dir.string()).run_id != run_id_) out.push_back(dir.filename().string());
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
    const ckpt::Meta m = ckpt::read_meta(dir);
    check_resume_compatible(dir, m, cfg_, model, world_.size);
    if (m.train_data && train_data_ &&
        (m.train_data->bytes != train_data_->bytes || m.train_data->crc != train_data_->crc)) {
      throw UserError(train_data_->path + ": the training data changed since " + dir + " was written (then " +
                      std::to_string(m.train_data->bytes) + " bytes, " + m.train_data->crc + "; now " +
                      std::to_string(train_data_->bytes) + " bytes, " + train_data_->crc +
                      "): its sampler position would point into other data. Restore the file to resume, or start "
                      "a new run (--overwrite, or another output_dir)");
    }
    const auto& units = model.units();
    if (m.world_size != world_.size)
      spdlog::info("[ckpt] re-slicing {} from {} to {} ranks", dir, m.world_size, world_.size);

    ckpt::ShardFiles files(dir, m);
    for (size_t i = 0; i < units.size(); ++i) {
      dist::FlatUnit& u = *units[i];
      const ckpt::UnitMeta& um = m.units[i];
      const int64_t lo = u.shard_offset(), hi = std::min(lo + u.params().numel(), um.numel);
      auto& st = optimizer[i];
      if (!st.m.defined()) {
        st.m = at::empty_like(u.params());
        st.v = at::empty_like(u.params());
      }
      at::NoGradGuard no_grad;
      const int64_t n = std::max<int64_t>(0, hi - lo);
      for (const auto& [kind, dst] :
           {std::pair<const char*, at::Tensor>{"param", u.params()}, {"exp_avg", st.m}, {"exp_avg_sq", st.v}}) {
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

}  // namespace neftune::run
