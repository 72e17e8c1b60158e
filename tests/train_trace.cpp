#include "tests/train_trace.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace neftune::test {

TrainTrace trace_steps(run::Trainer& t, int steps) {
  TrainTrace r;
  t.model().for_each_full_param([&](const std::string& name, const at::Tensor& v) { r.initial[name] = v.clone(); });
  for (int i = 0; i < steps; ++i) {
    const run::StepStats s = t.train_step();
    r.loss.push_back(s.loss);
    r.grad_norm.push_back(s.grad_norm);
  }
  t.model().for_each_full_param([&](const std::string& name, const at::Tensor& v) { r.weights[name] = v.clone(); });
  return r;
}

TraceDiff compare_traces(const TrainTrace& got, const TrainTrace& ref, double loss_rel, double grad_rel) {
  TraceDiff diff;
  EXPECT_EQ(got.loss.size(), ref.loss.size());
  for (size_t i = 0; i < std::min(got.loss.size(), ref.loss.size()); ++i) {
    EXPECT_NEAR(got.loss[i], ref.loss[i], loss_rel * ref.loss[i]) << "step " << i + 1;
    EXPECT_NEAR(got.grad_norm[i], ref.grad_norm[i], grad_rel * ref.grad_norm[i]) << "step " << i + 1;
    diff.worst_loss = std::max(diff.worst_loss, std::abs(got.loss[i] - ref.loss[i]) / ref.loss[i]);
  }
  EXPECT_EQ(got.weights.size(), ref.weights.size());
  double diff2 = 0, moved2 = 0;
  for (const auto& [name, w] : ref.weights) {
    if (!got.weights.count(name)) {
      ADD_FAILURE() << name << ": missing";
      continue;
    }
    EXPECT_TRUE(at::equal(got.initial.at(name), ref.initial.at(name))) << name << ": init differs";
    const at::Tensor d = got.weights.at(name) - w;
    diff.worst_weight = std::max(diff.worst_weight, d.abs().max().item<double>());
    diff2 += d.pow(2).sum().item<double>();
    moved2 += (w - ref.initial.at(name)).pow(2).sum().item<double>();
  }
  diff.rel_weights = std::sqrt(diff2 / moved2);
  return diff;
}

}  // namespace neftune::test
