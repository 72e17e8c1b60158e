// AdamW against LibTorch's torch::optim::AdamW, the LR schedule against its closed form, and
// global-norm clipping.
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cmath>

#include "distributed/communicator.h"
#include "distributed/flat_unit.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/clip.h"
#include "trainer/optim/schedule.h"

namespace neftune::optim {
namespace {

TEST(AdamW, MatchesTorchOptimAdamW) {
  for (const double wd : {0.0, 0.1}) {
    torch::manual_seed(0);
    const at::Tensor init = at::randn({257});
    at::Tensor ours = init.clone();
    at::Tensor theirs = init.clone().requires_grad_(true);
    torch::optim::AdamW ref({theirs}, torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd));
    AdamWState state;
    const at::Tensor mask = at::ones({257});
    for (int step = 1; step <= 6; ++step) {
      const at::Tensor g = at::randn({257});
      theirs.mutable_grad() = g.clone();
      ref.step();
      adamw_update(ours, g, state, mask, 1e-2, step, {0.9, 0.95, 1e-8, wd});
    }
    // Same fp32 formula, different operation order: agreement to a few ulps.
    EXPECT_LT((ours - theirs.detach()).abs().max().item<double>(), 1e-6) << "wd=" << wd;
  }
}

TEST(AdamW, FusedPassMatchesTheOpChain) {
  // CPU fp32 contiguous shards take the one-pass loop; anything else (a strided view here, CUDA in
  // production) the chain of LibTorch ops. Large enough to be split over threads.
  torch::manual_seed(1);
  const int64_t n = 300007;
  const at::Tensor init = at::randn({n});
  const at::Tensor mask = (at::rand({n}) > 0.3).to(at::kFloat);
  at::Tensor fused = init.clone();
  at::Tensor strided_storage = at::zeros({2 * n});
  at::Tensor chain = strided_storage.slice(0, 0, 2 * n, 2);  // not contiguous: the op chain
  chain.copy_(init);
  AdamWState sf, sc;
  for (int step = 1; step <= 5; ++step) {
    const at::Tensor g = at::randn({n}) * 1e-2;
    adamw_update(fused, g, sf, mask, 3e-3, step, {0.9, 0.95, 1e-8, 0.1});
    adamw_update(chain, g, sc, mask.slice(0, 0, n), 3e-3, step, {0.9, 0.95, 1e-8, 0.1});
  }
  // The same fp32 formula; only the association of (1-b2)*g*g differs: a few ulps of |p| ~ 1-4.
  EXPECT_LT((fused - chain).abs().max().item<double>(), 2e-6);
  EXPECT_LT((sf.v - sc.v).abs().max().item<double>(), 1e-10);  // v ~ 1e-4 * (1 - 0.95^t): ulps ~ 1e-11
}

TEST(AdamW, NoDecayWhereTheMaskIsZero) {
  at::Tensor p = at::ones({4});
  AdamWState s;
  const at::Tensor mask = at::tensor({1.0f, 0.0f, 1.0f, 0.0f});
  adamw_update(p, at::zeros({4}), s, mask, 0.1, 1, {0.9, 0.999, 1e-8, 0.5});
  // Zero gradient: only decay moves p, by lr * wd * p = 0.05 where the mask is 1.
  EXPECT_TRUE(at::allclose(p, at::tensor({0.95f, 1.0f, 0.95f, 1.0f})));
}

TEST(Schedule, WarmupThenCosineLinearConstant) {
  config::TrainSection t;
  t.lr = 1.0;
  t.warmup_ratio = 0.1;
  t.min_lr_ratio = 0.0;
  EXPECT_EQ(warmup_steps(0.1, 100), 10);
  EXPECT_EQ(warmup_steps(0.03, 200), 6);
  EXPECT_DOUBLE_EQ(lr_at(0, 100, t), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(9, 100, t), 1.0);
  t.schedule = config::Schedule::cosine;
  EXPECT_DOUBLE_EQ(lr_at(10, 100, t), 1.0);
  EXPECT_NEAR(lr_at(55, 100, t), 0.5, 1e-12);  // halfway through the decay: cos(pi/2)
  EXPECT_NEAR(lr_at(100, 100, t), 0.0, 1e-12);
  t.schedule = config::Schedule::linear;
  EXPECT_NEAR(lr_at(55, 100, t), 0.5, 1e-12);
  t.min_lr_ratio = 0.1;
  EXPECT_NEAR(lr_at(100, 100, t), 0.1, 1e-12);
  t.schedule = config::Schedule::constant;
  EXPECT_DOUBLE_EQ(lr_at(77, 100, t), 1.0);
}

TEST(Clip, GlobalNormOverUnitsAndTorchStyleScaling) {
  auto comm = dist::make_local_communicator();
  dist::FlatUnit a(dist::UnitLayout::make("a", {{"x", {3}, true}}, 1), *comm, {});
  dist::FlatUnit b(dist::UnitLayout::make("b", {{"y", {2, 2}, true}}, 1), *comm, {});
  a.grads().copy_(at::tensor({1.0f, 2.0f, 2.0f}));
  b.grads().copy_(at::tensor({4.0f, 0.0f, 0.0f, 0.0f}));
  const double norm = global_grad_norm({&a, &b}, *comm);
  EXPECT_NEAR(norm, std::sqrt(1 + 4 + 4 + 16.0), 1e-9);
  EXPECT_DOUBLE_EQ(clip_grads({&a, &b}, norm, 10.0), 1.0);  // under the limit: untouched
  const double f = clip_grads({&a, &b}, norm, 1.0);
  EXPECT_NEAR(f, 1.0 / (5.0 + 1e-6), 1e-12);
  EXPECT_NEAR(global_grad_norm({&a, &b}, *comm), 1.0, 1e-5);
}

}  // namespace
}  // namespace neftune::optim
