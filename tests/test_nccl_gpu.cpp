// The NCCL communicator on real GPUs: all-gather, reduce-scatter, all-reduce and broadcast in fp32 and
// bf16 against closed forms, and a buffer dropped right after its collective is started. Built only
// where LibTorch has CUDA and the NCCL backend is built; skips where no GPU is visible. Runs at any
// world size (one process: a communicator of one rank; under mpirun: one GPU per local rank).
//
// Every value is a small integer, exact in bf16 (8 significant bits: integers up to 256) and in any
// summation order, so every comparison is exact: a wrong offset, slice, dtype or stream order cannot
// hide inside a tolerance.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

#include "distributed/communicator.h"
#include "distributed/nccl_communicator.h"
#include "distributed/world.h"

namespace neftune {
namespace {

class NcclGpu : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  static void SetUpTestSuite() {
    if (!at::hasCUDA()) return;
    const auto& w = dist::world();
    device_ = std::make_unique<at::Device>(at::kCUDA, static_cast<c10::DeviceIndex>(w.local_rank % at::getNumGPUs()));
    comm_ = dist::make_nccl_communicator(*w.host, device_->index()).release();
  }
  static void TearDownTestSuite() {
    delete comm_;
    comm_ = nullptr;
  }
  void SetUp() override {
    if (!comm_) GTEST_SKIP() << "no GPU visible (or LibTorch without CUDA)";
  }
  at::TensorOptions opts() const { return at::TensorOptions().dtype(GetParam()).device(*device_); }
  // i % m as a float tensor of n elements: the building block of every closed form below.
  static at::Tensor pattern(int64_t n, int64_t m) { return at::arange(n, at::kLong).remainder(m).to(at::kFloat); }
  // `got` (any device, any dtype) equals `want` (CPU fp32) exactly.
  static void expect_equal(const at::Tensor& got, const at::Tensor& want, const char* what) {
    const at::Tensor g = got.to(at::kCPU, at::kFloat);
    const int64_t wrong = g.ne(want).sum().item<int64_t>();
    EXPECT_EQ(wrong, 0) << what << ": " << wrong << " of " << want.numel() << " elements differ (max |diff| "
                        << (g - want).abs().max().item<float>() << ")";
  }

  static dist::Communicator* comm_;
  static std::unique_ptr<at::Device> device_;
};
dist::Communicator* NcclGpu::comm_ = nullptr;
std::unique_ptr<at::Device> NcclGpu::device_;

// Sizes: under one NCCL chunk, an odd count, and several MB (many chunks and channels).
const std::vector<int64_t> kSizes = {1, 1000, 1 << 22};

TEST_P(NcclGpu, AllGatherConcatenatesRanks) {
  const int64_t P = comm_->size(), r = comm_->rank();
  for (const int64_t n : kSizes) {
    // rank q contributes q * 8 + (i % 32): at most 8 * 31 + 31 < 256 for up to 28 ranks.
    const at::Tensor in = (pattern(n, 32) + 8.0 * static_cast<double>(r)).to(opts());
    const at::Tensor out = at::full({P * n}, -1.0, opts());
    comm_->all_gather(out, in)->wait();
    at::Tensor want = at::empty({P * n});
    for (int64_t q = 0; q < P; ++q) want.narrow(0, q * n, n).copy_(pattern(n, 32) + 8.0 * static_cast<double>(q));
    expect_equal(out, want, "all_gather");
  }
}

TEST_P(NcclGpu, ReduceScatterSumsThisRanksSlice) {
  const int64_t P = comm_->size(), r = comm_->rank();
  const double S = static_cast<double>(P * (P + 1)) / 2;  // sum over ranks q of (q + 1)
  for (const int64_t n : kSizes) {
    // in[j] = (rank + 1) * (j % 7): the slice sums to S * (j % 7) <= 6 * S (exact for up to 8 ranks).
    const at::Tensor in = (pattern(P * n, 7) * static_cast<double>(r + 1)).to(opts());
    const at::Tensor out = at::full({n}, -1.0, opts());
    comm_->reduce_scatter(out, in)->wait();
    expect_equal(out, pattern(P * n, 7).narrow(0, r * n, n) * S, "reduce_scatter");
  }
}

TEST_P(NcclGpu, AllReduceSumMaxMin) {
  const int64_t P = comm_->size(), r = comm_->rank();
  const double S = static_cast<double>(P * (P + 1)) / 2;
  for (const int64_t n : kSizes) {
    const at::Tensor base = pattern(n, 7);
    for (const auto op : {dist::ReduceOp::sum, dist::ReduceOp::max, dist::ReduceOp::min}) {
      const at::Tensor t = (base * static_cast<double>(r + 1)).to(opts());
      comm_->all_reduce(t, op)->wait();
      const double factor = op == dist::ReduceOp::sum ? S : op == dist::ReduceOp::max ? static_cast<double>(P) : 1.0;
      expect_equal(t, base * factor, op == dist::ReduceOp::sum ? "all_reduce sum" : "all_reduce max/min");
    }
  }
}

TEST_P(NcclGpu, BroadcastFromEveryRoot) {
  const int64_t P = comm_->size(), r = comm_->rank();
  for (const int64_t n : kSizes) {
    for (int64_t root = 0; root < P; ++root) {
      const at::Tensor t =
          r == root ? (pattern(n, 97) + static_cast<double>(root)).to(opts()) : at::full({n}, -1.0, opts());
      comm_->broadcast(t, static_cast<int>(root))->wait();
      expect_equal(t, pattern(n, 97) + static_cast<double>(root), "broadcast");
    }
  }
}

// A collective's input dropped by its caller right after the call, while the collective still waits
// behind others on the communicator's stream: the caching allocator must not hand that memory to the
// next allocation on the compute stream, whose writes do not wait for the communicator. Without the
// stream bookkeeping, the overwrite below lands before the all-gather reads its input.
TEST_P(NcclGpu, DroppedInputIsNotReusedWhileTheCollectiveRuns) {
  const int64_t P = comm_->size(), r = comm_->rank();
  const int64_t n = 1 << 20;
  std::optional<at::Tensor> in = (pattern(n, 32) + 8.0 * static_cast<double>(r)).to(opts());
  const at::Tensor out = at::full({P * n}, -1.0, opts());
  // Keep the communicator's stream busy: 8 out-of-place all-gathers of 1 GiB per rank (milliseconds of
  // copying even on an H200, while the host needs microseconds to queue what follows).
  const int64_t big = (int64_t{1} << 30) / static_cast<int64_t>(at::elementSize(GetParam()));
  const at::Tensor busy_in = at::ones({big}, opts()), busy_out = at::empty({P * big}, opts());
  std::vector<dist::WorkPtr> busy;
  busy.reserve(8);
  for (int i = 0; i < 8; ++i) busy.push_back(comm_->all_gather(busy_out, busy_in));

  const dist::WorkPtr work = comm_->all_gather(out, *in);
  in.reset();                          // only the collective still refers to its memory
  std::vector<at::Tensor> overwrites;  // same size, same stream: the first candidates for its block
  overwrites.reserve(4);
  for (int i = 0; i < 4; ++i) overwrites.push_back(at::full({n}, 255.0, opts()));
  work->wait();
  for (auto& w : busy) w->wait();

  at::Tensor want = at::empty({P * n});
  for (int64_t q = 0; q < P; ++q) want.narrow(0, q * n, n).copy_(pattern(n, 32) + 8.0 * static_cast<double>(q));
  expect_equal(out, want, "all_gather from a dropped input");
  for (const auto& o : overwrites) expect_equal(o, at::full({n}, 255.0), "the overwriting allocation");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, NcclGpu, ::testing::Values(at::kFloat, at::kBFloat16),
                         [](const auto& info) { return std::string(info.param == at::kFloat ? "fp32" : "bf16"); });

}  // namespace
}  // namespace neftune
