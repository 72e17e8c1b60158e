// The on-disk format of a neftune checkpoint directory, and its validation:
//
//   meta.json                         step, sampler position, world size, model config, unit layout, and
//                                     each rank file's size and CRC-32C
//   rank-00000-of-00002.safetensors   this shard of every unit: <unit>/param, <unit>/exp_avg, <unit>/exp_avg_sq
//   config.yaml, config.json, tokenizer files
//
// A checkpoint is complete and loadable, or it is refused with io::CheckpointError naming the file and
// what is wrong.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "distributed/flat_unit.h"
#include "trainer/io/safetensors.h"

namespace neftune::run::ckpt {

inline constexpr int kFormatVersion = 1;
inline constexpr const char* kTensorKinds[] = {"param", "exp_avg", "exp_avg_sq"};

std::string step_name(int64_t step);  // "step-00000020"
std::string rank_file(int q, int n);  // "rank-00000-of-00002.safetensors"
inline std::string tensor_name(const std::string& unit, const char* kind) { return unit + "/" + kind; }

struct UnitMeta {
  std::string name;
  int64_t numel = 0, padded_numel = 0, shard_numel = 0;
  std::vector<std::pair<std::string, std::vector<int64_t>>> params;
};

struct FileSum {
  uint64_t bytes = 0;
  std::string crc;  // io::crc32c_text
};

// The training data file a checkpoint was trained on: a changed file is refused on resume (the sampler's
// position would point into other data).
struct DataSum {
  std::string path;  // as data.train named it (for messages; the content is what is compared)
  uint64_t bytes = 0;
  std::string crc;  // io::crc32c_text of the file's bytes
};

// clang-tidy 14 sees a possible throw in the implicit special members of a struct holding nlohmann::json.
struct Meta {  // NOLINT(bugprone-exception-escape)
  int64_t step = 0, epoch = 0, position = 0, global_batch = 0;
  int world_size = 1, num_shards = 1;
  std::string run_id;                    // "" in checkpoints written before run ids
  std::map<std::string, FileSum> files;  // rank file -> size and checksum (empty before checksums)
  std::optional<DataSum> train_data;     // absent for built-in data and in older checkpoints
  nlohmann::json model;
  std::vector<UnitMeta> units;
};

// <dir>/meta.json, checked for the format, its version, consistent sizes, its own checksum (absent in
// checkpoints written before it: then unchecked), a step that matches a step-NNNNNNNN directory's name,
// and a sampler state that is not negative.
Meta read_meta(const std::string& dir);

// The meta.json of a checkpoint being written: `m` (its units ignored) and the layout of `units`;
// `sharding` and `config_hash` are recorded for people, never read back. Its "checksum" is the CRC-32C
// of the object's compact dump without that key.
nlohmann::json meta_json(const Meta& m, const std::vector<dist::FlatUnit*>& units, const std::string& sharding,
                         const std::string& config_hash);

// The structure: meta.json and every rank file with every tensor of the right size.
void validate_structure(const std::string& dir, const Meta& m);

// Every rank file's size and CRC-32C against meta.json, for the files q = rank, rank + size, ... (so the
// ranks of a job share the reading). Checkpoints from before checksums have none to check.
void verify_files(const std::string& dir, const Meta& m, int rank, int size);

// The checkpoint directories (step-*) under root, newest first.
std::vector<std::filesystem::path> checkpoints_newest_first(const std::filesystem::path& root);

// The checkpoint's shard files, opened on first use.
class ShardFiles {
 public:
  ShardFiles(std::string dir, const Meta& m) : dir_(std::move(dir)), m_(m) {}
  const io::SafetensorsFile& get(int q);
  // Copies values [lo, hi) of a unit's flat `kind` tensor into dst (dst[0] is value lo).
  void read(const UnitMeta& u, const char* kind, int64_t lo, int64_t hi, const at::Tensor& dst);

 private:
  std::string dir_;
  const Meta& m_;
  std::map<int, std::unique_ptr<io::SafetensorsFile>> files_;
};

}  // namespace neftune::run::ckpt

namespace neftune::run {

// Checks that `dir` is a complete checkpoint (meta.json, every rank file with every tensor of the
// right size, every file's size and CRC-32C as meta.json records them); throws io::CheckpointError
// naming the file and what is wrong.
void validate_checkpoint(const std::string& dir);

}  // namespace neftune::run
