#include "launch/inference_model.h"

#include <ATen/Parallel.h>

#include <filesystem>

#include "config/errors.h"
#include "distributed/world.h"
#include "trainer/model/llama_config.h"
#include "trainer/run/device.h"

namespace neftune::launch {

InferenceModel load_inference_model(const std::string& dir, const std::string& dtype_name,
                                    const std::string& device_spec, int threads) {
  if (threads < 0) throw UserError("--threads: must be >= 0 (got " + std::to_string(threads) + "); 0 = all cores");
  if (threads > 0) at::set_num_threads(dist::capped_threads(threads, "--threads"));
  const at::Device device = run::parse_device(device_spec);
  const at::ScalarType dtype = dtype_name == "bf16" ? at::kBFloat16 : at::kFloat;
  run::set_fp32_matmul_precision(device, dtype, /*tf32=*/false);
  // The pair is checked before the weights are read: a tokenizer with ids past the embedding table
  // would fail at the first such id, deep inside the model.
  auto tok = tok::load_tokenizer_from_model_dir(dir);
  const int64_t model_vocab =
      model::LlamaConfig::load((std::filesystem::path(dir) / "config.json").string()).vocab_size;
  if (tok->vocab_size() > model_vocab) {
    throw UserError(dir + ": the tokenizer has " + std::to_string(tok->vocab_size()) +
                    " ids but config.json's vocab_size is " + std::to_string(model_vocab) +
                    ": the tokenizer files are not this model's (put the model's own tokenizer in the directory)");
  }
  return {model::LlamaModel::load(dir, dtype, device), std::move(tok)};
}

}  // namespace neftune::launch
