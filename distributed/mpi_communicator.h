// MPI backend: CPU tensors, non-blocking collectives (MPI_Iallgather, MPI_Ireduce_scatter_block,
// MPI_Iallreduce, MPI_Ibcast). bf16 reductions use a custom MPI op (MPI has no bf16 type).
#pragma once

#include <mpi.h>

#include <memory>

#include "distributed/communicator.h"

namespace neftune::dist {

// Wraps a duplicate of `comm`, so its traffic never interleaves with other users of `comm`.
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm);

}  // namespace neftune::dist
