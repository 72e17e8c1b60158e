#include "trainer/optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace neftune::optim {

int64_t warmup_steps(double warmup_ratio, int64_t total_steps) {
  return static_cast<int64_t>(std::ceil(warmup_ratio * static_cast<double>(total_steps)));
}

double lr_at(int64_t step, int64_t total_steps, const config::TrainSection& t) {
  const int64_t warmup = warmup_steps(t.warmup_ratio, total_steps);
  if (step < warmup) return t.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double progress = std::clamp(
      static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total_steps - warmup)), 0.0, 1.0);
  const double lo = t.min_lr_ratio;
  switch (t.schedule) {
    case config::Schedule::cosine:
      return t.lr * (lo + (1.0 - lo) * 0.5 * (1.0 + std::cos(M_PI * progress)));
    case config::Schedule::linear:
      return t.lr * (lo + (1.0 - lo) * (1.0 - progress));
    case config::Schedule::constant:
      return t.lr;
  }
  return t.lr;
}

}  // namespace neftune::optim
