// The library-failure channel: a failed MPI/NCCL/CUDA call prints file:line and the library's own
// message, then aborts every rank. A failed collective cannot be recovered, and a hang is worse than
// an abort.
#pragma once

#include <string>

namespace neftune::dist {

// Prints "[rank r] file:line: what" to stderr and takes every rank down (MPI_Abort when MPI is up,
// std::_Exit otherwise).
[[noreturn]] void fatal(const char* file, int line, const std::string& what);

// The text of an MPI error code.
std::string mpi_error_string(int code);

}  // namespace neftune::dist

#define NEFTUNE_MPI_CHECK(call)                                                                                      \
  do {                                                                                                               \
    const int neftune_mpi_rc_ = (call);                                                                              \
    if (neftune_mpi_rc_ != 0 /* MPI_SUCCESS */)                                                                      \
      ::neftune::dist::fatal(__FILE__, __LINE__,                                                                     \
                             std::string(#call) + " failed: " + ::neftune::dist::mpi_error_string(neftune_mpi_rc_)); \
  } while (0)
