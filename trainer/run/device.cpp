#include "trainer/run/device.h"

#include "config/errors.h"
#include "trainer/run/logging.h"

namespace neftune::run {

at::Device parse_device(const std::string& spec) {
  const bool cuda = at::hasCUDA();
  if (spec == "auto") return cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  at::Device device = at::kCPU;
  try {
    device = at::Device(spec);
  } catch (const std::exception&) {
    throw UserError("--device '" + spec + "': expected auto, cpu, cuda or cuda:N");
  }
  if (device.is_cpu()) return device;
  if (!device.is_cuda()) throw UserError("--device '" + spec + "': only cpu and cuda devices are supported");
  if (!cuda) {
#ifdef NEFTUNE_TORCH_CUDA
    throw UserError("--device '" + spec + "': no GPU is visible to this process (use --device cpu)");
#else
    throw UserError("--device '" + spec + "': this build's LibTorch has no CUDA (use --device cpu)");
#endif
  }
  const int64_t n = static_cast<int64_t>(at::getNumGPUs());
  const int64_t index = device.has_index() ? device.index() : 0;
  if (index >= n) {
    throw UserError("--device '" + spec + "': only " + std::to_string(n) +
                    " GPU(s) are visible (cuda:0..cuda:" + std::to_string(n - 1) + ")");
  }
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void set_fp32_matmul_precision(const at::Device& device, at::ScalarType compute_dtype, bool tf32) {
  if (!device.is_cuda()) return;
  // "high" lets cuBLAS use TF32 for fp32 products; "highest" keeps them in full fp32.
  at::globalContext().setFloat32MatmulPrecision(tf32 ? "high" : "highest");
  at::globalContext().setAllowTF32CuDNN(tf32);
  if (compute_dtype == at::kFloat && !tf32) {
    warn_once("fp32-on-gpu",
              "[device] computing in fp32 on a GPU without TF32: bf16 (model.dtype: bf16, --dtype bf16) is several "
              "times faster; train.tf32: true keeps fp32 weights with TF32 matmuls");
  }
}

}  // namespace neftune::run
