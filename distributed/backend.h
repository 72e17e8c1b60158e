// Picks the training communicator and device from distributed.backend:
//   auto -> nccl on cuda:<local_rank> when LibTorch has CUDA, a GPU is visible and the NCCL backend
//           was built; mpi on the CPU otherwise
//   mpi  -> CPU tensors over MPI;  nccl -> CUDA tensors over NCCL (an error where that cannot run)
// A world of one process gets the local communicator whatever the backend (nothing to communicate).
#pragma once

#include <ATen/ATen.h>

#include <memory>

#include "config/enums.h"
#include "distributed/communicator.h"
#include "distributed/world.h"

namespace neftune::dist {

struct TrainingComm {
  std::unique_ptr<Communicator> comm;
  at::Device device = at::kCPU;
};

// Collective over world.host: the ranks first agree whether every one of them can run NCCL, so they all
// take the same branch (or all report the same error). `timeout_s` is the NCCL watchdog's limit.
TrainingComm make_training_comm(World& world, config::Backend backend, double timeout_s);

// True when this build can run the NCCL backend here (CUDA LibTorch, NCCL built, a GPU visible).
bool nccl_available();

}  // namespace neftune::dist
