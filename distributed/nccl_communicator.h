// NCCL backend: CUDA tensors, one GPU per rank. The unique id is bootstrapped over the host (MPI)
// communicator. Collectives run on the communicator's own stream, ordered against the compute stream
// with CUDA events: a collective starts after the work already queued on the compute stream, and
// Work::wait() makes the compute stream wait for it (the host does not block). At most a few collectives
// are queued ahead of the GPU; a watchdog thread aborts every rank when NCCL reports an asynchronous
// error or a collective outlives the timeout.
#pragma once

#include <memory>

#include "distributed/communicator.h"

namespace neftune::dist {

struct NcclOptions {
  double timeout_s = 1800;  // a collective unfinished after this long aborts every rank; 0 = never
  int poll_ms = 200;        // how often the watchdog looks at NCCL's error state and the oldest collective
};

// Collective over `host`: every rank calls it with its own local CUDA device index.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, int device_index,
                                                     const NcclOptions& options = {});

}  // namespace neftune::dist
