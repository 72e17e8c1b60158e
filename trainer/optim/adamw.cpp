#include "trainer/optim/adamw.h"

#include <cmath>

namespace neftune::optim {

void adamw_update(at::Tensor& param, const at::Tensor& grad, AdamWState& state, const at::Tensor& decay_mask,
                  double lr, int64_t step, const AdamWOptions& o) {
  at::NoGradGuard no_grad;
  if (!state.m.defined()) {
    state.m = at::zeros_like(param);
    state.v = at::zeros_like(param);
  }
  if (o.weight_decay > 0) param.addcmul_(param, decay_mask, -lr * o.weight_decay);
  state.m.mul_(o.beta1).add_(grad, 1.0 - o.beta1);
  state.v.mul_(o.beta2).addcmul_(grad, grad, 1.0 - o.beta2);
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
  const at::Tensor denom = (state.v.sqrt() / std::sqrt(bc2)).add_(o.eps);
  param.addcdiv_(state.m, denom, -lr / bc1);
}

}  // namespace neftune::optim
