// Where inference and training compute: the `--device` option of generate, eval and report, and the
// fp32 matmul precision on NVIDIA GPUs.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace neftune::run {

// "auto" (the first GPU when this build's LibTorch has CUDA and one is visible, else the CPU), "cpu",
// "cuda" or "cuda:N". A device this build or machine cannot use is a UserError that says what it has.
at::Device parse_device(const std::string& spec);

// fp32 matmuls on an NVIDIA GPU: TF32 tensor cores when `tf32`, full fp32 otherwise. A CUDA run that
// computes in fp32 without TF32 gets a one-time warning (bf16 is several times faster). No effect on
// the CPU.
void set_fp32_matmul_precision(const at::Device& device, at::ScalarType compute_dtype, bool tf32);

}  // namespace neftune::run
