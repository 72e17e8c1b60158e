// An HF-format model directory: config.json plus model.safetensors, or model-0000x-of-0000y.safetensors
// with model.safetensors.index.json. Reading checks every expected tensor is present with the shape
// the config implies, and that no decoder layer holds a tensor it does not imply; writing splits into
// shards above a size limit, like save_pretrained.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "trainer/io/safetensors.h"
#include "trainer/model/llama_config.h"

namespace neftune::model {

class HfCheckpoint {
 public:
  explicit HfCheckpoint(const std::string& dir);
  const LlamaConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }
  bool has(const std::string& name) const { return files_.count(name) > 0; }
  // CPU tensor with the stored dtype.
  at::Tensor load(const std::string& name) const;
  // Values [begin, begin + count) of the flattened tensor (1-D, stored dtype): a rank reads its shard only.
  at::Tensor load_range(const std::string& name, int64_t begin, int64_t count) const;
  // The stored dtype of the largest floating tensor, as an HF torch_dtype ("float32", "bfloat16", ...).
  std::string stored_dtype() const;

 private:
  std::string dir_;
  LlamaConfig config_;
  std::map<std::string, std::shared_ptr<io::SafetensorsFile>> files_;  // tensor name -> its file
};

struct HfWriteOptions {
  at::ScalarType dtype = at::kFloat;        // stored dtype of the weights
  int64_t max_shard_bytes = 5'000'000'000;  // split into model-0000x-of-0000y above this
};

// Writes config.json and the weights of `config` into `dir` (created). `get(name)` returns each
// tensor's full value when asked, in all_params() order, so a caller can gather one unit at a time.
// When `write` is false the calls to `get` still happen (collectives on every rank) but nothing is
// written: every rank runs this, rank 0 writes.
void write_hf_model(const std::string& dir, const LlamaConfig& config,
                    const std::function<at::Tensor(const std::string&)>& get, const HfWriteOptions& options,
                    bool write = true);

}  // namespace neftune::model
