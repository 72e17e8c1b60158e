// Learning-rate schedule: linear warmup from 0 over ceil(warmup_ratio * total) steps, then cosine,
// linear or constant down to min_lr_ratio * lr.
#pragma once

#include <cstdint>

#include "config/train_config.h"

namespace neftune::optim {

int64_t warmup_steps(double warmup_ratio, int64_t total_steps);
// lr for the update with 0-based index `step` of `total_steps`.
double lr_at(int64_t step, int64_t total_steps, const config::TrainSection& t);

}  // namespace neftune::optim
