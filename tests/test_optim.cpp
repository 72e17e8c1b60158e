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

using dist::IndexRange;

// The runs of 1s of a 0/1 mask, as decay ranges.
std::vector<IndexRange> ranges_of(const at::Tensor& mask) {
  std::vector<IndexRange> out;
  const at::Tensor m = mask.contiguous();
  const float* p = m.data_ptr<float>();
  for (int64_t i = 0; i < m.numel(); ++i) {
    if (p[i] == 0.0f) continue;
    if (!out.empty() && out.back().end == i) {
      ++out.back().end;
    } else {
      out.push_back({i, i + 1});
    }
  }
  return out;
}

TEST(AdamW, MatchesTorchOptimAdamW) {
  for (const double wd : {0.0, 0.1}) {
    torch::manual_seed(0);
    const at::Tensor init = at::randn({257});
    at::Tensor ours = init.clone();
    at::Tensor theirs = init.clone().requires_grad_(true);
    torch::optim::AdamW ref({theirs}, torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd));
    AdamWState state;
    const std::vector<IndexRange> all{{0, 257}};
    for (int step = 1; step <= 6; ++step) {
      const at::Tensor g = at::randn({257});
      theirs.mutable_grad() = g.clone();
      ref.step();
      adamw_update(ours, g, state, all, 1e-2, step, {0.9, 0.95, 1e-8, wd});
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
  const std::vector<IndexRange> decay = ranges_of((at::rand({n}) > 0.3).to(at::kFloat));
  at::Tensor fused = init.clone();
  at::Tensor strided_storage = at::zeros({2 * n});
  at::Tensor chain = strided_storage.slice(0, 0, 2 * n, 2);  // not contiguous: the op chain
  chain.copy_(init);
  AdamWState sf, sc;
  for (int step = 1; step <= 5; ++step) {
    const at::Tensor g = at::randn({n}) * 1e-2;
    adamw_update(fused, g, sf, decay, 3e-3, step, {0.9, 0.95, 1e-8, 0.1});
    adamw_update(chain, g, sc, decay, 3e-3, step, {0.9, 0.95, 1e-8, 0.1});
  }
  // The same fp32 formula; only the association of (1-b2)*g*g differs: a few ulps of |p| ~ 1-4.
  EXPECT_LT((fused - chain).abs().max().item<double>(), 2e-6);
  EXPECT_LT((sf.v - sc.v).abs().max().item<double>(), 1e-10);  // v ~ 1e-4 * (1 - 0.95^t): ulps ~ 1e-11
}

TEST(AdamW, NoDecayOutsideTheRanges) {
  at::Tensor p = at::ones({4});
  AdamWState s;
  adamw_update(p, at::zeros({4}), s, {{0, 1}, {2, 3}}, 0.1, 1, {0.9, 0.999, 1e-8, 0.5});
  // Zero gradient: only decay moves p, by lr * wd * p = 0.05 inside the ranges.
  EXPECT_TRUE(at::allclose(p, at::tensor({0.95f, 1.0f, 0.95f, 1.0f})));
}

// The update as it was written with a full-size 0/1 decay mask (1 where decay applies): the one-pass
// CPU loop and the op chain, kept here as the reference for the range form.
void mask_update_fused(at::Tensor& param, const at::Tensor& grad, AdamWState& state, const at::Tensor& mask, double lr,
                       int64_t step, const AdamWOptions& o) {
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
  float* p = param.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* m = state.m.data_ptr<float>();
  float* v = state.v.data_ptr<float>();
  const float* k = mask.data_ptr<float>();
  const float b1 = static_cast<float>(o.beta1), one_minus_b1 = static_cast<float>(1.0 - o.beta1);
  const float b2 = static_cast<float>(o.beta2), one_minus_b2 = static_cast<float>(1.0 - o.beta2);
  const float decay = static_cast<float>(-lr * o.weight_decay), step_size = static_cast<float>(-lr / bc1);
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bc2)), eps = static_cast<float>(o.eps);
  for (int64_t i = 0; i < param.numel(); ++i) {
    float pi = p[i];
    pi += decay * (pi * k[i]);
    const float gi = g[i];
    const float mi = m[i] * b1 + one_minus_b1 * gi;
    const float vi = v[i] * b2 + one_minus_b2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = pi + step_size * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
  }
}

void mask_update_chain(at::Tensor& param, const at::Tensor& grad, AdamWState& state, const at::Tensor& mask, double lr,
                       int64_t step, const AdamWOptions& o) {
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
  param.addcmul_(param, mask, -lr * o.weight_decay);
  state.m.mul_(o.beta1).add_(grad, 1.0 - o.beta1);
  state.v.mul_(o.beta2).addcmul_(grad, grad, 1.0 - o.beta2);
  const at::Tensor denom = (state.v.sqrt() / std::sqrt(bc2)).add_(o.eps);
  param.addcdiv_(state.m, denom, -lr / bc1);
}

TEST(AdamW, DecayRangesGiveTheMaskFormulationsResultBitForBit) {
  // A unit whose shards (world size 4) start and end inside parameters, mix decayed and undecayed
  // ones, and (the last) end in padding; and the same unit unsharded.
  const std::vector<dist::ParamSpec> params = {
      {"norm", {1000}, false}, {"w", {300, 300}, true}, {"bias", {777}, false}, {"w2", {50000}, true}};
  const AdamWOptions o{0.9, 0.95, 1e-8, 0.1};
  for (const int64_t world : {1, 4}) {
    const dist::UnitLayout layout = dist::UnitLayout::make("u", params, world);
    at::Tensor full_mask = at::zeros({layout.padded_numel});
    for (size_t i = 0; i < params.size(); ++i)
      if (params[i].decay) full_mask.narrow(0, layout.offsets[i], params[i].numel()).fill_(1.0);
    if (world == 4) {
      ASSERT_EQ(layout.padded_numel, 141780);  // 141777 values + 3 of padding
      EXPECT_EQ(layout.decay_ranges(int64_t{2} * 35445, 35445),
                (std::vector<IndexRange>{{0, 91000 - 70890}, {91777 - 70890, 35445}}));
      EXPECT_EQ(layout.decay_ranges(int64_t{3} * 35445, 35445), (std::vector<IndexRange>{{0, 141777 - 106335}}));
    }
    for (int64_t rank = 0; rank < world; ++rank) {
      SCOPED_TRACE("world " + std::to_string(world) + " rank " + std::to_string(rank));
      const int64_t n = layout.shard_numel(), begin = rank * n;
      const std::vector<IndexRange> ranges = layout.decay_ranges(begin, n);
      const at::Tensor mask = full_mask.narrow(0, begin, n).contiguous();
      torch::manual_seed(rank);
      const at::Tensor init = at::randn({n});
      // Fused path (contiguous CPU fp32) and op chain (a strided view), each against its mask form.
      at::Tensor fused = init.clone(), fused_ref = init.clone();
      at::Tensor chain_storage = at::zeros({2 * n}), chain_ref_storage = at::zeros({2 * n});
      at::Tensor chain = chain_storage.slice(0, 0, 2 * n, 2), chain_ref = chain_ref_storage.slice(0, 0, 2 * n, 2);
      chain.copy_(init);
      chain_ref.copy_(init);
      AdamWState sf, sf_ref, sc, sc_ref;
      for (AdamWState* st : {&sf_ref, &sc_ref}) {
        st->m = at::zeros({n});
        st->v = at::zeros({n});
      }
      for (int step = 1; step <= 3; ++step) {
        const at::Tensor g = at::randn({n}) * 1e-2;
        adamw_update(fused, g, sf, ranges, 3e-3, step, o);
        mask_update_fused(fused_ref, g, sf_ref, mask, 3e-3, step, o);
        adamw_update(chain, g, sc, ranges, 3e-3, step, o);
        mask_update_chain(chain_ref, g, sc_ref, mask, 3e-3, step, o);
      }
      // Exact: decay touches the same elements with the same fp32 operations (p * 1 == p), and outside
      // the ranges the mask form adds decay * (p * 0), which leaves a nonzero p as it is.
      EXPECT_TRUE(at::equal(fused, fused_ref));
      EXPECT_TRUE(at::equal(sf.m, sf_ref.m) && at::equal(sf.v, sf_ref.v));
      EXPECT_TRUE(at::equal(chain, chain_ref));
      EXPECT_TRUE(at::equal(sc.m, sc_ref.m) && at::equal(sc.v, sc_ref.v));
      // And decay did act: the decayed elements differ from an update without it.
      at::Tensor plain = init.clone();
      AdamWState sp;
      torch::manual_seed(rank);
      (void)at::randn({n});
      for (int step = 1; step <= 3; ++step) adamw_update(plain, at::randn({n}) * 1e-2, sp, {}, 3e-3, step, o);
      EXPECT_TRUE(at::equal(plain.masked_select(mask == 0), fused.masked_select(mask == 0)));
      if (!ranges.empty()) {
        EXPECT_FALSE(at::equal(plain.masked_select(mask == 1), fused.masked_select(mask == 1)));
      }
    }
  }
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
