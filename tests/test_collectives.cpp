// The MPI communicator's collectives against closed forms (fp32, bf16, int64; uneven sizes; waits in any
// order), FlatUnit sharding with padding, and global-norm clipping over shards. Run under mpirun with
// 2 and 4 ranks (it also passes at 1 rank, where the communicator is the local one).
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>

#include "distributed/flat_unit.h"
#include "distributed/mpi_communicator.h"
#include "distributed/world.h"
#include "trainer/optim/clip.h"

namespace neftune::dist {
namespace {

std::unique_ptr<Communicator> comm_under_test() {
  return world().mpi ? make_mpi_communicator(MPI_COMM_WORLD) : make_local_communicator();
}

TEST(Collectives, AllGatherReduceScatterAllReduceBroadcastClosedForms) {
  auto c = comm_under_test();
  const int64_t N = c->size(), r = c->rank();
  for (const at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kLong}) {
    for (const int64_t n : {1, 7, 1000}) {
      // all_gather: block s of the output is rank s's input (arange(n) + 1000 s; exact in bf16 for n <= 7
      // ... so bf16 uses small values).
      const int64_t base = dt == at::kBFloat16 ? 8 : 1000;
      const at::Tensor in = (at::arange(n, at::kLong) % 8 + base * r).to(dt);
      const at::Tensor out = at::empty({n * N}, in.options());
      c->all_gather(out, in)->wait();
      for (int64_t s = 0; s < N; ++s) {
        EXPECT_TRUE(at::equal(out.narrow(0, s * n, n), (at::arange(n, at::kLong) % 8 + base * s).to(dt)))
            << "all_gather dt=" << dt << " n=" << n << " block " << s;
      }
      // reduce_scatter: out[j] = sum_s in_s[r n + j] with in_s[i] = s + (i % 5) -> N(N-1)/2 + N ((r n + j) % 5).
      const at::Tensor rs_in = (at::arange(n * N, at::kLong) % 5 + r).to(dt);
      const at::Tensor rs_out = at::empty({n}, rs_in.options());
      c->reduce_scatter(rs_out, rs_in)->wait();
      const at::Tensor want = (N * (N - 1) / 2 + N * ((at::arange(n, at::kLong) + r * n) % 5)).to(dt);
      EXPECT_TRUE(at::equal(rs_out, want)) << "reduce_scatter dt=" << dt << " n=" << n;
    }
    at::Tensor t = at::full({3}, static_cast<double>(r + 1), at::TensorOptions().dtype(dt));
    c->all_reduce(t, ReduceOp::sum)->wait();
    EXPECT_EQ(t[0].item<double>(), N * (N + 1) / 2.0);
    at::Tensor mx = at::full({2}, static_cast<double>(r), at::TensorOptions().dtype(dt));
    c->all_reduce(mx, ReduceOp::max)->wait();
    EXPECT_EQ(mx[1].item<double>(), N - 1.0);
    at::Tensor b = at::full({4}, static_cast<double>(r == N - 1 ? 7 : 0), at::TensorOptions().dtype(dt));
    c->broadcast(b, static_cast<int>(N - 1))->wait();
    EXPECT_EQ(b.sum().item<double>(), 28.0);
  }
  EXPECT_EQ(c->broadcast_string(r == 0 ? "from rank 0" : "", 0), "from rank 0");
}

TEST(Collectives, AsynchronousOpsCompleteWhateverTheWaitOrder) {
  auto c = comm_under_test();
  const int64_t N = c->size();
  std::vector<at::Tensor> outs;
  std::vector<WorkPtr> works;
  for (int k = 0; k < 4; ++k) {
    const at::Tensor in = at::full({5}, static_cast<float>(k * 10 + c->rank()));
    outs.push_back(at::empty({5 * N}));
    works.push_back(c->all_gather(outs.back(), in));
  }
  for (int k = 3; k >= 0; --k) works[k]->wait();
  for (int k = 0; k < 4; ++k)
    for (int64_t s = 0; s < N; ++s) EXPECT_EQ(outs[k][s * 5].item<float>(), static_cast<float>(int64_t{k} * 10 + s));
}

TEST(FlatUnit, UnevenSizesArePaddedShardedGatheredAndReduced) {
  auto c = comm_under_test();
  const int64_t N = c->size();
  // 3 + 5 = 8 values: padded to a multiple of N (8 is one for N = 1, 2, 4; add 1 to make it uneven).
  const UnitLayout layout = UnitLayout::make("u", {{"a", {3}, false}, {"b", {3, 3}, true}}, N);
  EXPECT_EQ(layout.numel, 12);
  EXPECT_EQ(layout.padded_numel % N, 0);
  EXPECT_GE(layout.padded_numel, 12);
  for (const auto mode : {config::Sharding::full, config::Sharding::grad_op, config::Sharding::none}) {
    ShardingOptions o;
    o.mode = mode;
    FlatUnit u(layout, *c, o);
    const at::Tensor a = at::arange(3).to(at::kFloat), b = at::arange(9).to(at::kFloat).view({3, 3}) + 100;
    u.set_param("a", a);
    u.set_param("b", b);
    u.gather();
    const auto v = u.views(true);
    EXPECT_TRUE(at::equal(v[0], a));
    EXPECT_TRUE(at::equal(v[1], b));
    // Each rank's loss is (rank+1) * sum(params): the summed gradient is N(N+1)/2 everywhere real.
    ((v[0].sum() + v[1].sum()) * static_cast<double>(c->rank() + 1)).backward();
    u.reduce_grads(true);
    u.finish_reduce();
    const double total = N * (N + 1) / 2.0;
    const std::vector<IndexRange> decay = u.decay_ranges();
    auto decays = [&](int64_t i) {
      return std::any_of(decay.begin(), decay.end(), [&](const IndexRange& r) { return r.begin <= i && i < r.end; });
    };
    const int64_t off = u.shard_offset();
    for (int64_t i = 0; i < u.grads().numel(); ++i) {
      const int64_t flat = off + i;
      EXPECT_EQ(u.grads()[i].item<double>(), flat < 12 ? total : 0.0)
          << "mode " << config::to_string(mode) << " i " << flat;
      EXPECT_EQ(decays(i), flat >= 3 && flat < 12) << "b decays; a and the padding do not";
    }
    // Global norm over shards = the norm of the unsharded gradient (padding adds nothing).
    EXPECT_NEAR(optim::global_grad_norm({&u}, *c), std::sqrt(12.0) * total, 1e-4);
    u.release();
    EXPECT_TRUE(at::equal(u.gather_full_fp32().narrow(0, 0, 3), a));
  }
}

}  // namespace
}  // namespace neftune::dist
