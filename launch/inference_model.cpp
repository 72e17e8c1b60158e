#include "launch/inference_model.h"

#include <ATen/Parallel.h>

#include "config/errors.h"
#include "distributed/world.h"
#include "trainer/run/device.h"

namespace neftune::launch {

InferenceModel load_inference_model(const std::string& dir, const std::string& dtype_name,
                                    const std::string& device_spec, int threads) {
  if (threads < 0) throw UserError("--threads: must be >= 0 (got " + std::to_string(threads) + "); 0 = all cores");
  if (threads > 0) at::set_num_threads(dist::capped_threads(threads, "--threads"));
  const at::Device device = run::parse_device(device_spec);
  const at::ScalarType dtype = dtype_name == "bf16" ? at::kBFloat16 : at::kFloat;
  run::set_fp32_matmul_precision(device, dtype, /*tf32=*/false);
  return {model::LlamaModel::load(dir, dtype, device), tok::load_tokenizer_from_model_dir(dir)};
}

}  // namespace neftune::launch
