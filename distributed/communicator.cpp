#include "distributed/communicator.h"

#include <chrono>
#include <cstring>
#include <thread>

namespace neftune::dist {

double Communicator::all_reduce_scalar(double value, ReduceOp op) {
  at::Tensor t = at::full({1}, value, at::kDouble);
  all_reduce(t, op)->wait();
  return t.item<double>();
}

std::string Communicator::broadcast_string(const std::string& value, int root, int poll_ms) {
  at::Tensor len = at::full({1}, static_cast<int64_t>(rank() == root ? value.size() : 0), at::kLong);
  WorkPtr w = broadcast(len, root);
  if (poll_ms > 0)
    while (!w->test()) std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  w->wait();
  const int64_t n = len.item<int64_t>();
  at::Tensor bytes = at::empty({n}, at::kByte);
  if (rank() == root && n > 0) std::memcpy(bytes.data_ptr(), value.data(), static_cast<size_t>(n));
  if (n > 0) broadcast(bytes, root)->wait();
  return std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(n));
}

namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  WorkPtr all_gather(const at::Tensor& out, const at::Tensor& in) override {
    TORCH_CHECK(out.numel() == in.numel(), "all_gather: out must have size * in.numel() elements");
    if (!out.is_same(in)) out.copy_(in);
    return std::make_unique<DoneWork>();
  }
  WorkPtr reduce_scatter(const at::Tensor& out, const at::Tensor& in) override {
    TORCH_CHECK(out.numel() == in.numel(), "reduce_scatter: in must have size * out.numel() elements");
    if (!out.is_same(in)) out.copy_(in);
    return std::make_unique<DoneWork>();
  }
  WorkPtr all_reduce(const at::Tensor&, ReduceOp) override { return std::make_unique<DoneWork>(); }
  WorkPtr broadcast(const at::Tensor&, int) override { return std::make_unique<DoneWork>(); }
  void barrier() override {}
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() { return std::make_unique<LocalCommunicator>(); }

}  // namespace neftune::dist
