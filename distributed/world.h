// The process group: MPI when launched by mpirun/srun, a single process otherwise.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "distributed/communicator.h"

namespace neftune::dist {

struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;                  // rank among the processes on this node (shared-memory split)
  int local_size = 1;                  // processes on this node
  bool mpi = false;                    // MPI was initialised (launched by mpirun/srun)
  std::unique_ptr<Communicator> host;  // CPU collectives: control values, metrics, checks
};

// True when a launcher (mpirun, srun with PMIx/PMI) started this process.
bool launched_by_mpi_launcher();

// Initialises MPI (thread level FUNNELED, checked) when launched by mpirun/srun, else a 1-process world.
// Idempotent. The returned world lives until finalize_world().
World& init_world(int* argc, char*** argv);
World& world();
void finalize_world();
// Ends every rank of `world` with exit code `code` (MPI_Abort under MPI with more than one rank, else
// exit): for an error only some ranks know of, where a clean exit would leave the others waiting.
[[noreturn]] void abort_world(const World& world, int code);

// Intra-op threads for this rank (train.threads): for 0, the cores the launcher bound it to, else the
// node's cores divided by the ranks on it (at least 1); otherwise `requested`, capped as capped_threads().
int intra_op_threads(const World& w, int requested);

// The cores this process may run on (sched_getaffinity; the node's online cores where that fails).
int usable_cores();

// `requested` (> 0) threads, capped at usable_cores() with a warning naming `option` ("train.threads",
// "--threads"): more threads than cores only make them take turns. `ranks_on_node` ranks with that many
// threads each that oversubscribe the node's cores get a warning too. Warns only when `warn`.
int capped_threads(int requested, const std::string& option, int ranks_on_node = 1, bool warn = true);

// What every rank throws when a dist::agree() phase failed somewhere: all ranks hold the same message,
// so each can report it and exit cleanly (no MPI_Abort needed).
class AgreedFailure : public std::runtime_error {
 public:
  AgreedFailure(const std::string& message, bool user_error) : std::runtime_error(message), user_error_(user_error) {}
  bool user_error() const { return user_error_; }  // a UserError (bad config/data/path) somewhere

 private:
  bool user_error_;
};

// Runs `fn` on every rank and agrees on the outcome. If it threw anywhere, every rank throws
// AgreedFailure with the lowest failing rank's message, so all ranks report the same clear error and
// exit instead of one rank hanging in the next collective; StopRequested instead when that rank's phase
// gave up because a stop signal arrived.
void agree(Communicator& comm, const std::function<void()>& fn);

}  // namespace neftune::dist
