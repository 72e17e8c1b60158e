#include "distributed/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "distributed/check.h"

#ifdef NEFTUNE_TORCH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

#define NEFTUNE_CUDA_CHECK(call)                                                                       \
  do {                                                                                                 \
    const cudaError_t neftune_cuda_rc_ = (call);                                                       \
    if (neftune_cuda_rc_ != cudaSuccess)                                                               \
      ::neftune::dist::fatal(__FILE__, __LINE__,                                                       \
                             std::string(#call) + " failed: " + cudaGetErrorString(neftune_cuda_rc_)); \
  } while (0)

#define NEFTUNE_NCCL_CHECK(call, comm)                                                                 \
  do {                                                                                                 \
    const ncclResult_t neftune_nccl_rc_ = (call);                                                      \
    if (neftune_nccl_rc_ != ncclSuccess) {                                                             \
      const char* last = (comm) ? ncclGetLastError(comm) : "";                                         \
      ::neftune::dist::fatal(__FILE__, __LINE__,                                                       \
                             std::string(#call) + " failed: " + ncclGetErrorString(neftune_nccl_rc_) + \
                                 (last && *last ? std::string(" (") + last + ")" : std::string()));    \
    }                                                                                                  \
  } while (0)

namespace neftune::dist {
namespace {

ncclDataType_t nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kHalf:
      return ncclFloat16;
    case at::kBFloat16:
      return ncclBfloat16;
    case at::kLong:
      return ncclInt64;
    case at::kInt:
      return ncclInt32;
    case at::kByte:
      return ncclUint8;
    case at::kChar:
      return ncclInt8;
    default:
      TORCH_CHECK(false, "nccl backend: unsupported dtype ", t.scalar_type());
  }
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::sum ? ncclSum : op == ReduceOp::max ? ncclMax : ncclMin; }

void check_cuda_contiguous(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.is_cuda(), "nccl backend: ", what, " must be a CUDA tensor (use backend mpi for CPU)");
  TORCH_CHECK(t.is_contiguous(), "nccl backend: ", what, " must be contiguous");
}

// The stream LibTorch queues compute on (the legacy default stream when LibTorch has no CUDA).
cudaStream_t compute_stream(int device) {
#ifdef NEFTUNE_TORCH_CUDA
  return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
#else
  (void)device;
  return cudaStreamLegacy;
#endif
}

using Clock = std::chrono::steady_clock;

// One collective queued on the NCCL stream: its completion event, and the tensors it reads and writes.
// The tensors are held until the compute stream has been ordered after the event (Work::wait()), so
// their memory returns to LibTorch's caching allocator only when reusing it on the compute stream is
// safe. (record_stream is not used: it is ignored for memory the allocator did not hand out, and for
// the rest it defers every free until the NCCL stream catches up, which makes the allocator reserve
// new blocks while the host runs ahead.)
struct Flight {
  Flight(const char* op, int64_t bytes) : op(op), bytes(bytes), issued(Clock::now()) {
    NEFTUNE_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming | cudaEventBlockingSync));
  }
  ~Flight() { cudaEventDestroy(done); }
  Flight(const Flight&) = delete;
  Flight& operator=(const Flight&) = delete;

  const char* op;
  int64_t bytes;
  Clock::time_point issued;
  cudaEvent_t done = nullptr;
};

class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<Flight> flight, int device, at::Tensor a, at::Tensor b)
      : flight_(std::move(flight)), device_(device), a_(std::move(a)), b_(std::move(b)) {}
  // A handle dropped without wait() still orders the compute stream before its tensors are released.
  ~NcclWork() override {
    if (flight_) cudaStreamWaitEvent(compute_stream(device_), flight_->done, 0);
  }
  bool test() override { return !flight_ || cudaEventQuery(flight_->done) == cudaSuccess; }
  void wait() override {
    if (!flight_) return;
    NEFTUNE_CUDA_CHECK(cudaStreamWaitEvent(compute_stream(device_), flight_->done, 0));
    flight_.reset();
    a_.reset();
    b_.reset();
  }

 private:
  std::shared_ptr<Flight> flight_;
  int device_;
  at::Tensor a_, b_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& host, int device, const NcclOptions& options)
      : device_(device), rank_(host.rank()), size_(host.size()), options_(options) {
    NEFTUNE_CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id;
    std::memset(&id, 0, sizeof id);
    if (rank_ == 0) NEFTUNE_NCCL_CHECK(ncclGetUniqueId(&id), nullptr);
    at::Tensor bytes = at::empty({static_cast<int64_t>(sizeof id)}, at::kByte);
    std::memcpy(bytes.data_ptr(), &id, sizeof id);
    host.broadcast(bytes, 0)->wait();
    std::memcpy(&id, bytes.data_ptr(), sizeof id);
    NEFTUNE_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_), comm_);
    NEFTUNE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    watchdog_ = std::thread([this] { watch(); });
  }
  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    // Unwinding from an error that only this rank may have seen: the peers can be blocked in a
    // collective, and ncclCommDestroy would wait for them. Abort the communicator instead.
    if (comm_) {
      if (std::uncaught_exceptions() > 0) {
        ncclCommAbort(comm_);
      } else {
        ncclCommDestroy(comm_);
      }
    }
    if (stream_) cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }
  bool progresses_in_background() const override { return true; }

  WorkPtr all_gather(const at::Tensor& out, const at::Tensor& in) override {
    check_cuda_contiguous(out, "all_gather output");
    check_cuda_contiguous(in, "all_gather input");
    TORCH_CHECK(out.numel() == in.numel() * size_ && out.scalar_type() == in.scalar_type(),
                "all_gather: out must be size * in.numel() elements of the same dtype");
    begin();
    NEFTUNE_NCCL_CHECK(
        ncclAllGather(in.data_ptr(), out.data_ptr(), static_cast<size_t>(in.numel()), nccl_type(in), comm_, stream_),
        comm_);
    return end("all_gather", out, in);
  }

  WorkPtr reduce_scatter(const at::Tensor& out, const at::Tensor& in) override {
    check_cuda_contiguous(out, "reduce_scatter output");
    check_cuda_contiguous(in, "reduce_scatter input");
    TORCH_CHECK(in.numel() == out.numel() * size_ && out.scalar_type() == in.scalar_type(),
                "reduce_scatter: in must be size * out.numel() elements of the same dtype");
    begin();
    NEFTUNE_NCCL_CHECK(ncclReduceScatter(in.data_ptr(), out.data_ptr(), static_cast<size_t>(out.numel()), nccl_type(in),
                                         ncclSum, comm_, stream_),
                       comm_);
    return end("reduce_scatter", out, in);
  }

  WorkPtr all_reduce(const at::Tensor& t, ReduceOp op) override {
    check_cuda_contiguous(t, "all_reduce tensor");
    begin();
    NEFTUNE_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t),
                                     nccl_op(op), comm_, stream_),
                       comm_);
    return end("all_reduce", t, at::Tensor());
  }

  WorkPtr broadcast(const at::Tensor& t, int root) override {
    check_cuda_contiguous(t, "broadcast tensor");
    begin();
    NEFTUNE_NCCL_CHECK(
        ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), root, comm_, stream_),
        comm_);
    return end("broadcast", t, at::Tensor());
  }

  void barrier() override {
    at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA, device_));
    all_reduce(one, ReduceOp::sum)->wait();
    NEFTUNE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  // Before queueing a collective: bound what is in flight, then order the NCCL stream after the work
  // already queued on the compute stream (the inputs are ready).
  void begin() {
    limit_in_flight();
    cudaEvent_t ready;
    NEFTUNE_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    NEFTUNE_CUDA_CHECK(cudaEventRecord(ready, compute_stream(device_)));
    NEFTUNE_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    NEFTUNE_CUDA_CHECK(cudaEventDestroy(ready));
  }
  WorkPtr end(const char* op, at::Tensor a, at::Tensor b) {
    const int64_t bytes = a.numel() * a.element_size();
    auto flight = std::make_shared<Flight>(op, bytes);
    NEFTUNE_CUDA_CHECK(cudaEventRecord(flight->done, stream_));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      in_flight_.push_back(flight);
    }
    return std::make_unique<NcclWork>(std::move(flight), device_, std::move(a), std::move(b));
  }

  // The host may queue at most kMaxInFlight collectives ahead of the GPU (two FSDP units' worth: an
  // all-gather and a reduce-scatter each), as PyTorch FSDP's limit_all_gathers does. Without a bound
  // the host queues every layer's gather within milliseconds and each gathered buffer is allocated long
  // before it is used.
  static constexpr size_t kMaxInFlight = 4;
  void limit_in_flight() {
    for (;;) {
      std::shared_ptr<Flight> oldest;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        drop_completed();
        if (in_flight_.size() < kMaxInFlight) return;
        oldest = in_flight_.front();
      }
      // A peer that never arrives leaves this wait to the watchdog, which aborts every rank.
      NEFTUNE_CUDA_CHECK(cudaEventSynchronize(oldest->done));
    }
  }

  // Forgets the collectives that have completed, oldest first. The caller holds mutex_.
  void drop_completed() {
    while (!in_flight_.empty() && cudaEventQuery(in_flight_.front()->done) == cudaSuccess) in_flight_.pop_front();
  }

  // The watchdog thread: NCCL reports a failed peer or network only through ncclCommGetAsyncError, and
  // a collective whose peer died never completes. Either way the communicator is aborted (so no rank
  // stays blocked inside NCCL) and every rank is taken down.
  void watch() {
    const auto poll = std::chrono::milliseconds(options_.poll_ms);
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, poll, [this] { return stopping_; });
      if (stopping_) return;
      drop_completed();
      ncclResult_t async = ncclSuccess;
      const ncclResult_t rc = ncclCommGetAsyncError(comm_, &async);
      std::string failure;
      if (rc != ncclSuccess) {
        failure = std::string("ncclCommGetAsyncError failed: ") + ncclGetErrorString(rc);
      } else if (async != ncclSuccess && async != ncclInProgress) {
        const char* last = ncclGetLastError(comm_);
        failure = std::string("NCCL reported an asynchronous error: ") + ncclGetErrorString(async) +
                  (last && *last ? std::string(" (") + last + ")" : std::string());
      } else if (options_.timeout_s > 0 && !in_flight_.empty()) {
        const Flight& f = *in_flight_.front();
        const double waited = std::chrono::duration<double>(Clock::now() - f.issued).count();
        if (waited > options_.timeout_s) {
          failure = std::string(f.op) + " of " + std::to_string(f.bytes) + " bytes has not completed after " +
                    std::to_string(static_cast<int64_t>(waited)) + " s (distributed.timeout_s " +
                    std::to_string(static_cast<int64_t>(options_.timeout_s)) +
                    "): a rank died or is stuck; aborting every rank";
        }
      }
      if (!failure.empty()) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        fatal(__FILE__, __LINE__, "nccl backend: " + failure);
      }
    }
  }

  int device_;
  int rank_, size_;
  NcclOptions options_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::mutex mutex_;  // guards in_flight_ and stopping_
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Flight>> in_flight_;
  bool stopping_ = false;
  std::thread watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, int device_index, const NcclOptions& options) {
  return std::make_unique<NcclCommunicator>(host, device_index, options);
}

}  // namespace neftune::dist
