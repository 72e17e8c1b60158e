// One interface for every collective the trainer uses. Backends: local (1 process), mpi (CPU tensors),
// nccl (CUDA tensors). The FSDP code and the trainer only see this interface.
//
// Every call is collective: all ranks call it in the same order with matching shapes. Calls return a
// Work handle; the result may be read only after wait(). A failed collective is not recoverable: the
// backend prints the library's error and aborts every rank (see check.h).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

namespace neftune::dist {

enum class ReduceOp { sum, max, min };

class Work {
 public:
  virtual ~Work() = default;
  // Blocks the host (mpi) or orders the compute stream after the collective (nccl).
  virtual void wait() = 0;
  // True once the collective has completed (never blocks); wait() must still be called.
  virtual bool test() { return true; }
};
using WorkPtr = std::unique_ptr<Work>;

// A Work that is already complete.
class DoneWork final : public Work {
 public:
  void wait() override {}
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;
  // True when a started collective advances while the host computes (NCCL's own stream). MPI without a
  // progress thread moves data only inside MPI calls, so there overlapping buys nothing and only holds
  // buffers longer.
  virtual bool progresses_in_background() const { return false; }

  // out (size * n) <- concatenation over ranks of in (n). Contiguous, same dtype and device.
  virtual WorkPtr all_gather(const at::Tensor& out, const at::Tensor& in) = 0;
  // out (n) <- sum over ranks of slice rank() of in (size * n).
  virtual WorkPtr reduce_scatter(const at::Tensor& out, const at::Tensor& in) = 0;
  // t <- op over ranks of t, in place.
  virtual WorkPtr all_reduce(const at::Tensor& t, ReduceOp op) = 0;
  // t <- t of rank root, in place.
  virtual WorkPtr broadcast(const at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;

  // Host conveniences built on the above (blocking).
  double all_reduce_scalar(double value, ReduceOp op);
  // Rank root's string on every rank. With poll > 0 the other ranks sleep between completion checks
  // instead of spinning inside MPI (an idle daemon rank then costs no CPU).
  std::string broadcast_string(const std::string& value, int root, int poll_ms = 0);
};

// The single-process communicator: every collective is a copy. Keeps every path testable on one core.
std::unique_ptr<Communicator> make_local_communicator();

}  // namespace neftune::dist
