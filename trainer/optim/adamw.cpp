#include "trainer/optim/adamw.h"

#include <ATen/Parallel.h>

#include <cmath>

namespace neftune::optim {
namespace {

bool fusable(const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(); }

// The update in one pass over p, g, m, v (and the mask): the optimizer step is memory-bound, and
// the chain of LibTorch ops below reads and writes each buffer about eight times and allocates two
// temporaries of the shard's size. Same fp32 arithmetic, in the same order, as that chain.
void fused_cpu(at::Tensor& param, const at::Tensor& grad, AdamWState& state, const at::Tensor& decay_mask, double lr,
               double bc1, double bc2, const AdamWOptions& o) {
  float* p = param.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* m = state.m.data_ptr<float>();
  float* v = state.v.data_ptr<float>();
  const float* mask = o.weight_decay > 0 ? decay_mask.data_ptr<float>() : nullptr;
  const float b1 = static_cast<float>(o.beta1), one_minus_b1 = static_cast<float>(1.0 - o.beta1);
  const float b2 = static_cast<float>(o.beta2), one_minus_b2 = static_cast<float>(1.0 - o.beta2);
  const float decay = static_cast<float>(-lr * o.weight_decay), step_size = static_cast<float>(-lr / bc1);
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bc2)), eps = static_cast<float>(o.eps);
  at::parallel_for(0, param.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float pi = p[i];
      if (mask) pi += decay * (pi * mask[i]);
      const float gi = g[i];
      const float mi = m[i] * b1 + one_minus_b1 * gi;
      const float vi = v[i] * b2 + one_minus_b2 * (gi * gi);
      m[i] = mi;
      v[i] = vi;
      p[i] = pi + step_size * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
    }
  });
}

}  // namespace

void adamw_update(at::Tensor& param, const at::Tensor& grad, AdamWState& state, const at::Tensor& decay_mask,
                  double lr, int64_t step, const AdamWOptions& o) {
  at::NoGradGuard no_grad;
  if (!state.m.defined()) {
    state.m = at::zeros_like(param);
    state.v = at::zeros_like(param);
  }
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
  if (fusable(param) && fusable(grad) && fusable(state.m) && fusable(state.v) &&
      (o.weight_decay <= 0 || fusable(decay_mask)) && grad.numel() == param.numel()) {
    fused_cpu(param, grad, state, decay_mask, lr, bc1, bc2, o);
    return;
  }
  if (o.weight_decay > 0) param.addcmul_(param, decay_mask, -lr * o.weight_decay);
  state.m.mul_(o.beta1).add_(grad, 1.0 - o.beta1);
  state.v.mul_(o.beta2).addcmul_(grad, grad, 1.0 - o.beta2);
  const at::Tensor denom = (state.v.sqrt() / std::sqrt(bc2)).add_(o.eps);
  param.addcdiv_(state.m, denom, -lr / bc1);
}

}  // namespace neftune::optim
