// A one-line progress bar with ETA and tokens/s, drawn on stdout when it is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "config/enums.h"

namespace neftune::run {

class ProgressBar {
 public:
  ProgressBar(config::Progress mode, bool is_rank0, int64_t first_step, int64_t total_steps);
  ~ProgressBar();
  bool active() const { return active_; }
  void update(int64_t step, double loss, double tokens_per_s);
  void finish();

 private:
  bool active_ = false;
  int64_t first_, total_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace neftune::run
