// A training run's trace (every step's loss and grad norm, the full weights before and after) and its
// comparison against a reference run that must agree up to the order of fp32 sums.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "trainer/run/trainer.h"

namespace neftune::test {

struct TrainTrace {
  std::vector<double> loss, grad_norm;
  std::map<std::string, at::Tensor> initial, weights;
};

// Runs `steps` optimizer steps of `t` and records them.
TrainTrace trace_steps(run::Trainer& t, int steps);

struct TraceDiff {
  double worst_loss = 0;    // largest |loss - ref| / ref over the steps
  double rel_weights = 0;   // |w - w_ref| / |w_ref - w0_ref| over all parameters
  double worst_weight = 0;  // largest element-wise |w - w_ref|
};

// Expects every step's loss within loss_rel and grad norm within grad_rel of `ref` (relative), and the
// same initial weights; returns the differences for the caller's bounds and report. Weights are left to
// the caller: Adam can move a weight whose gradient is ~0 by up to lr per step on a rounding-level
// difference, so they are bounded relative to how far training moved them.
TraceDiff compare_traces(const TrainTrace& got, const TrainTrace& ref, double loss_rel, double grad_rel);

}  // namespace neftune::test
