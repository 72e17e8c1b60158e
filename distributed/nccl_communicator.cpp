#include "distributed/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>

#include "distributed/check.h"

#ifdef NEFTUNE_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#endif

#define NEFTUNE_CUDA_CHECK(call)                                                                   \
  do {                                                                                             \
    const cudaError_t neftune_cuda_rc_ = (call);                                                   \
    if (neftune_cuda_rc_ != cudaSuccess)                                                           \
      ::neftune::dist::fatal(__FILE__, __LINE__,                                                   \
                             std::string(#call) + " failed: " + cudaGetErrorString(neftune_cuda_rc_)); \
  } while (0)

#define NEFTUNE_NCCL_CHECK(call, comm)                                                             \
  do {                                                                                             \
    const ncclResult_t neftune_nccl_rc_ = (call);                                                  \
    if (neftune_nccl_rc_ != ncclSuccess) {                                                         \
      const char* last = (comm) ? ncclGetLastError(comm) : "";                                     \
      ::neftune::dist::fatal(__FILE__, __LINE__,                                                   \
                             std::string(#call) + " failed: " + ncclGetErrorString(neftune_nccl_rc_) + \
                                 (last && *last ? std::string(" (") + last + ")" : std::string())); \
    }                                                                                              \
  } while (0)

namespace neftune::dist {
namespace {

ncclDataType_t nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kLong: return ncclInt64;
    case at::kInt: return ncclInt32;
    case at::kByte: return ncclUint8;
    case at::kChar: return ncclInt8;
    default: TORCH_CHECK(false, "nccl backend: unsupported dtype ", t.scalar_type());
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  return op == ReduceOp::sum ? ncclSum : op == ReduceOp::max ? ncclMax : ncclMin;
}

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

// Tells LibTorch's caching allocator that `t` is in use on `stream`, so its memory is not reused
// before the collective finishes.
void record_stream(const at::Tensor& t, cudaStream_t stream, int device) {
#ifdef NEFTUNE_TORCH_CUDA
  c10::cuda::CUDACachingAllocator::recordStream(
      t.storage().data_ptr(), c10::cuda::getStreamFromExternal(stream, static_cast<c10::DeviceIndex>(device)));
#else
  (void)t, (void)stream, (void)device;
#endif
}

class NcclWork final : public Work {
 public:
  NcclWork(cudaEvent_t done, int device, at::Tensor a, at::Tensor b)
      : done_(done), device_(device), a_(std::move(a)), b_(std::move(b)) {}
  ~NcclWork() override { cudaEventDestroy(done_); }
  bool test() override { return cudaEventQuery(done_) == cudaSuccess; }
  void wait() override {
    NEFTUNE_CUDA_CHECK(cudaStreamWaitEvent(compute_stream(device_), done_, 0));
    a_.reset();
    b_.reset();
  }

 private:
  cudaEvent_t done_;
  int device_;
  at::Tensor a_, b_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& host, int device) : device_(device), rank_(host.rank()), size_(host.size()) {
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
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
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
    begin({out, in});
    NEFTUNE_NCCL_CHECK(ncclAllGather(in.data_ptr(), out.data_ptr(), static_cast<size_t>(in.numel()), nccl_type(in),
                                     comm_, stream_),
                       comm_);
    return end(out, in);
  }

  WorkPtr reduce_scatter(const at::Tensor& out, const at::Tensor& in) override {
    check_cuda_contiguous(out, "reduce_scatter output");
    check_cuda_contiguous(in, "reduce_scatter input");
    TORCH_CHECK(in.numel() == out.numel() * size_ && out.scalar_type() == in.scalar_type(),
                "reduce_scatter: in must be size * out.numel() elements of the same dtype");
    begin({out, in});
    NEFTUNE_NCCL_CHECK(ncclReduceScatter(in.data_ptr(), out.data_ptr(), static_cast<size_t>(out.numel()),
                                         nccl_type(in), ncclSum, comm_, stream_),
                       comm_);
    return end(out, in);
  }

  WorkPtr all_reduce(const at::Tensor& t, ReduceOp op) override {
    check_cuda_contiguous(t, "all_reduce tensor");
    begin({t});
    NEFTUNE_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t),
                                     nccl_op(op), comm_, stream_),
                       comm_);
    return end(t, at::Tensor());
  }

  WorkPtr broadcast(const at::Tensor& t, int root) override {
    check_cuda_contiguous(t, "broadcast tensor");
    begin({t});
    NEFTUNE_NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), root,
                                     comm_, stream_),
                       comm_);
    return end(t, at::Tensor());
  }

  void barrier() override {
    at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA, device_));
    all_reduce(one, ReduceOp::sum)->wait();
    NEFTUNE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  // The collective starts only after what the compute stream has queued (the inputs are ready).
  void begin(std::initializer_list<at::Tensor> tensors) {
    cudaEvent_t ready;
    NEFTUNE_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    NEFTUNE_CUDA_CHECK(cudaEventRecord(ready, compute_stream(device_)));
    NEFTUNE_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    NEFTUNE_CUDA_CHECK(cudaEventDestroy(ready));
    for (const auto& t : tensors) record_stream(t, stream_, device_);
  }
  WorkPtr end(at::Tensor a, at::Tensor b) {
    cudaEvent_t done;
    NEFTUNE_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    NEFTUNE_CUDA_CHECK(cudaEventRecord(done, stream_));
    return std::make_unique<NcclWork>(done, device_, std::move(a), std::move(b));
  }

  int device_;
  int rank_, size_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, int device_index) {
  return std::make_unique<NcclCommunicator>(host, device_index);
}

}  // namespace neftune::dist
