#include "trainer/optim/adamw.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>

namespace neftune::optim {
namespace {

bool fusable(const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(); }

// The update in one pass over p, g, m, v: the optimizer step is memory-bound, and the chain of
// LibTorch ops below reads and writes each buffer about eight times and allocates two temporaries of
// the shard's size. Same fp32 arithmetic, in the same order, as that chain.
struct FusedCpu {
  float* p;
  const float* g;
  float* m;
  float* v;
  float b1, one_minus_b1, b2, one_minus_b2, decay, step_size, sqrt_bc2, eps;

  // Elements [lo, hi), all with or all without weight decay: one branch-free loop each.
  template <bool kDecay>
  void run(int64_t lo, int64_t hi) const {
    for (int64_t i = lo; i < hi; ++i) {
      float pi = p[i];
      if constexpr (kDecay) pi += decay * pi;
      const float gi = g[i];
      const float mi = m[i] * b1 + one_minus_b1 * gi;
      const float vi = v[i] * b2 + one_minus_b2 * (gi * gi);
      m[i] = mi;
      v[i] = vi;
      p[i] = pi + step_size * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
    }
  }

  // Elements [begin, end), with decay inside `ranges` (ascending, disjoint).
  void run(int64_t begin, int64_t end, const std::vector<dist::IndexRange>& ranges) const {
    auto r = std::upper_bound(ranges.begin(), ranges.end(), begin,
                              [](int64_t i, const dist::IndexRange& x) { return i < x.end; });
    int64_t i = begin;
    for (; r != ranges.end() && r->begin < end; ++r) {
      const int64_t lo = std::max(r->begin, begin), hi = std::min(r->end, end);
      run<false>(i, lo);
      run<true>(lo, hi);
      i = hi;
    }
    run<false>(i, end);
  }
};

}  // namespace

void adamw_update(at::Tensor& param, const at::Tensor& grad, AdamWState& state,
                  const std::vector<dist::IndexRange>& decay_ranges, double lr, int64_t step, const AdamWOptions& o) {
  at::NoGradGuard no_grad;
  if (!state.m.defined()) {
    state.m = at::zeros_like(param);
    state.v = at::zeros_like(param);
  }
  for (const auto& r : decay_ranges) {
    TORCH_CHECK(0 <= r.begin && r.begin <= r.end && r.end <= param.numel(), "decay range [", r.begin, ", ", r.end,
                ") outside a parameter shard of ", param.numel());
  }
  const std::vector<dist::IndexRange> none;
  const std::vector<dist::IndexRange>& ranges = o.weight_decay > 0 ? decay_ranges : none;
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
  if (fusable(param) && fusable(grad) && fusable(state.m) && fusable(state.v) && grad.numel() == param.numel()) {
    const FusedCpu f{param.data_ptr<float>(),
                     grad.data_ptr<float>(),
                     state.m.data_ptr<float>(),
                     state.v.data_ptr<float>(),
                     static_cast<float>(o.beta1),
                     static_cast<float>(1.0 - o.beta1),
                     static_cast<float>(o.beta2),
                     static_cast<float>(1.0 - o.beta2),
                     static_cast<float>(-lr * o.weight_decay),
                     static_cast<float>(-lr / bc1),
                     static_cast<float>(std::sqrt(bc2)),
                     static_cast<float>(o.eps)};
    at::parallel_for(0, param.numel(), 1 << 16, [&](int64_t begin, int64_t end) { f.run(begin, end, ranges); });
    return;
  }
  if (!ranges.empty()) {
    // p + (-lr wd) * p * 1 per range: the kernel (and rounding) of a full-size 0/1 mask, without one.
    const at::Tensor one = at::ones({}, param.options());
    for (const auto& r : ranges) {
      at::Tensor seg = param.narrow(0, r.begin, r.end - r.begin);
      seg.addcmul_(seg, one, -lr * o.weight_decay);
    }
  }
  state.m.mul_(o.beta1).add_(grad, 1.0 - o.beta1);
  state.v.mul_(o.beta2).addcmul_(grad, grad, 1.0 - o.beta2);
  const at::Tensor denom = (state.v.sqrt() / std::sqrt(bc2)).add_(o.eps);
  param.addcdiv_(state.m, denom, -lr / bc1);
}

}  // namespace neftune::optim
