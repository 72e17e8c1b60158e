// NCCL backend: CUDA tensors, one GPU per rank. The unique id is bootstrapped over the host (MPI)
// communicator. Collectives run on the communicator's own stream, ordered against the compute stream
// with CUDA events: a collective starts after the work already queued on the compute stream, and
// Work::wait() makes the compute stream wait for it (the host does not block).
#pragma once

#include <memory>

#include "distributed/communicator.h"

namespace neftune::dist {

// Collective over `host`: every rank calls it with its own local CUDA device index.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, int device_index);

}  // namespace neftune::dist
