#include "distributed/mpi_communicator.h"

#include <c10/util/BFloat16.h>

#include "distributed/check.h"

namespace neftune::dist {
namespace {

void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const c10::BFloat16*>(in);
  auto* b = static_cast<c10::BFloat16*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = c10::BFloat16(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}
void bf16_max(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const c10::BFloat16*>(in);
  auto* b = static_cast<c10::BFloat16*>(inout);
  for (int i = 0; i < *len; ++i)
    if (static_cast<float>(a[i]) > static_cast<float>(b[i])) b[i] = a[i];
}
void bf16_min(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const c10::BFloat16*>(in);
  auto* b = static_cast<c10::BFloat16*>(inout);
  for (int i = 0; i < *len; ++i)
    if (static_cast<float>(a[i]) < static_cast<float>(b[i])) b[i] = a[i];
}

// MPI handles for bf16, created once per process (freed by MPI_Finalize).
struct Bf16Types {
  MPI_Datatype type = MPI_DATATYPE_NULL;
  MPI_Op sum = MPI_OP_NULL, max = MPI_OP_NULL, min = MPI_OP_NULL;
  Bf16Types() {
    NEFTUNE_MPI_CHECK(MPI_Type_contiguous(2, MPI_BYTE, &type));
    NEFTUNE_MPI_CHECK(MPI_Type_commit(&type));
    NEFTUNE_MPI_CHECK(MPI_Op_create(&bf16_sum, 1, &sum));
    NEFTUNE_MPI_CHECK(MPI_Op_create(&bf16_max, 1, &max));
    NEFTUNE_MPI_CHECK(MPI_Op_create(&bf16_min, 1, &min));
  }
};
const Bf16Types& bf16_types() {
  static const Bf16Types kTypes;
  return kTypes;
}

MPI_Datatype mpi_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kLong:
      return MPI_INT64_T;
    case at::kInt:
      return MPI_INT32_T;
    case at::kByte:
      return MPI_UINT8_T;
    case at::kChar:
      return MPI_INT8_T;
    case at::kBFloat16:
      return bf16_types().type;
    default:
      TORCH_CHECK(false, "mpi backend: unsupported dtype ", t.scalar_type());
  }
}

MPI_Op mpi_op(ReduceOp op, const at::Tensor& t) {
  if (t.scalar_type() == at::kBFloat16) {
    const auto& b = bf16_types();
    return op == ReduceOp::sum ? b.sum : op == ReduceOp::max ? b.max : b.min;
  }
  return op == ReduceOp::sum ? MPI_SUM : op == ReduceOp::max ? MPI_MAX : MPI_MIN;
}

int count(int64_t n) {
  TORCH_CHECK(n <= INT32_MAX, "mpi backend: a single collective is limited to 2^31-1 elements (got ", n, ")");
  return static_cast<int>(n);
}

void check_cpu_contiguous(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu(), "mpi backend: ", what, " must be a CPU tensor (use backend nccl for CUDA)");
  TORCH_CHECK(t.is_contiguous(), "mpi backend: ", what, " must be contiguous");
}

class MpiWork final : public Work {
 public:
  MpiWork(MPI_Request req, at::Tensor keep_a, at::Tensor keep_b)
      : req_(req), keep_a_(std::move(keep_a)), keep_b_(std::move(keep_b)) {}
  ~MpiWork() override {
    if (req_ != MPI_REQUEST_NULL) MPI_Wait(&req_, MPI_STATUS_IGNORE);
  }
  bool test() override {
    if (req_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    NEFTUNE_MPI_CHECK(MPI_Test(&req_, &done, MPI_STATUS_IGNORE));  // a completed request becomes NULL
    return done != 0;
  }
  void wait() override {
    if (req_ == MPI_REQUEST_NULL) return;
    NEFTUNE_MPI_CHECK(MPI_Wait(&req_, MPI_STATUS_IGNORE));
    keep_a_.reset();
    keep_b_.reset();
  }

 private:
  MPI_Request req_;
  at::Tensor keep_a_, keep_b_;  // the buffers MPI reads/writes stay alive until wait()
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm parent) {
    NEFTUNE_MPI_CHECK(MPI_Comm_dup(parent, &comm_));
    NEFTUNE_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    NEFTUNE_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    NEFTUNE_MPI_CHECK(MPI_Comm_size(comm_, &size_));
    (void)bf16_types();
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  WorkPtr all_gather(const at::Tensor& out, const at::Tensor& in) override {
    check_cpu_contiguous(out, "all_gather output");
    check_cpu_contiguous(in, "all_gather input");
    TORCH_CHECK(out.numel() == in.numel() * size_ && out.scalar_type() == in.scalar_type(),
                "all_gather: out must be size * in.numel() elements of the same dtype");
    MPI_Request req;
    NEFTUNE_MPI_CHECK(MPI_Iallgather(in.data_ptr(), count(in.numel()), mpi_type(in), out.data_ptr(), count(in.numel()),
                                     mpi_type(out), comm_, &req));
    return std::make_unique<MpiWork>(req, out, in);
  }

  WorkPtr reduce_scatter(const at::Tensor& out, const at::Tensor& in) override {
    check_cpu_contiguous(out, "reduce_scatter output");
    check_cpu_contiguous(in, "reduce_scatter input");
    TORCH_CHECK(in.numel() == out.numel() * size_ && out.scalar_type() == in.scalar_type(),
                "reduce_scatter: in must be size * out.numel() elements of the same dtype");
    MPI_Request req;
    NEFTUNE_MPI_CHECK(MPI_Ireduce_scatter_block(in.data_ptr(), out.data_ptr(), count(out.numel()), mpi_type(in),
                                                mpi_op(ReduceOp::sum, in), comm_, &req));
    return std::make_unique<MpiWork>(req, out, in);
  }

  WorkPtr all_reduce(const at::Tensor& t, ReduceOp op) override {
    check_cpu_contiguous(t, "all_reduce tensor");
    MPI_Request req;
    NEFTUNE_MPI_CHECK(
        MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), count(t.numel()), mpi_type(t), mpi_op(op, t), comm_, &req));
    return std::make_unique<MpiWork>(req, t, at::Tensor());
  }

  WorkPtr broadcast(const at::Tensor& t, int root) override {
    check_cpu_contiguous(t, "broadcast tensor");
    MPI_Request req;
    NEFTUNE_MPI_CHECK(MPI_Ibcast(t.data_ptr(), count(t.numel()), mpi_type(t), root, comm_, &req));
    return std::make_unique<MpiWork>(req, t, at::Tensor());
  }

  void barrier() override { NEFTUNE_MPI_CHECK(MPI_Barrier(comm_)); }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm) { return std::make_unique<MpiCommunicator>(comm); }

}  // namespace neftune::dist
