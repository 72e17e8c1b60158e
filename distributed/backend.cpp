#include "distributed/backend.h"

#include <algorithm>

#include "config/errors.h"
#include "distributed/mpi_communicator.h"
#ifdef NEFTUNE_WITH_NCCL
#include "distributed/nccl_communicator.h"
#endif

namespace neftune::dist {

bool nccl_available() {
#if defined(NEFTUNE_WITH_NCCL) && defined(NEFTUNE_TORCH_CUDA)
  return at::hasCUDA();
#else
  return false;
#endif
}

TrainingComm make_training_comm(World& world, config::Backend backend, double timeout_s) {
  TrainingComm out;
  // Every rank must take the same branch: a rank without a GPU that stopped here alone would leave the
  // others in the NCCL id broadcast. Agree first, in a collective of its own.
  const bool here = nccl_available();
  const bool everywhere = world.size == 1 ? here : world.host->all_reduce_scalar(here ? 1.0 : 0.0, ReduceOp::min) > 0;
  const bool use_nccl = backend == config::Backend::nccl || (backend == config::Backend::auto_select && everywhere);
  if (use_nccl) {
    if (!everywhere) {
      const double without = world.size == 1 ? 1 : world.host->all_reduce_scalar(here ? 0.0 : 1.0, ReduceOp::sum);
      throw UserError(
          "config: distributed.backend: nccl needs a CUDA build of LibTorch, the NCCL backend "
          "(-DNEFTUNE_WITH_NCCL=ON) and a visible GPU on every rank; " +
          std::to_string(static_cast<int64_t>(without)) + " of " + std::to_string(world.size) +
          " rank(s) have none (this rank: " + (here ? "has one" : "none") + "; use backend: mpi)");
    }
#ifdef NEFTUNE_WITH_NCCL
    // One GPU per local rank; modulo the visible devices, so a launcher that already bound each task
    // to its own GPU (one visible device) works too.
    const int device = world.local_rank % std::max(1, static_cast<int>(at::getNumGPUs()));
    out.device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device));
    NcclOptions options;
    options.timeout_s = timeout_s;
    // An explicit `nccl` uses NCCL even on one rank; `auto` on one rank needs no communication.
    out.comm = world.size == 1 && backend == config::Backend::auto_select
                   ? make_local_communicator()
                   : make_nccl_communicator(*world.host, device, options);
#else
    (void)timeout_s;
#endif
    return out;
  }
  out.device = at::kCPU;
  out.comm = world.size == 1 ? make_local_communicator() : make_mpi_communicator(MPI_COMM_WORLD);
  return out;
}

}  // namespace neftune::dist
