// A LlamaModel with random weights (norms near 1, matrices N(0, scale^2)), for benchmarks and tests
// whose figures do not depend on trained values.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <map>
#include <string>

#include "trainer/model/llama.h"

namespace neftune::bench {

inline model::LlamaModel random_llama(const model::LlamaConfig& c, uint64_t seed, at::ScalarType dtype,
                                      double scale = 0.02) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  std::map<std::string, at::Tensor> w;
  for (const dist::ParamSpec& p : model::all_params(c)) {
    const at::Tensor r = at::randn(p.shape, gen);
    w[p.name] = p.name.find("norm") != std::string::npos ? 1 + 0.1 * r : scale * r;
  }
  return model::LlamaModel::from_tensors(
      c, [&](const std::string& n) { return w.at(n); }, dtype, at::kCPU);
}

}  // namespace neftune::bench
