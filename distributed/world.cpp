#include "distributed/world.h"

#include <mpi.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "config/errors.h"
#include "distributed/check.h"
#include "distributed/mpi_communicator.h"

namespace neftune::dist {
namespace {
World* g_world = nullptr;
}

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(buf, static_cast<size_t>(len));
}

void fatal(const char* file, int line, const std::string& what) {
  const int rank = g_world ? g_world->rank : 0;
  std::fprintf(stderr, "[rank %d] fatal: %s:%d: %s\n", rank, file, line, what.c_str());
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, kExitFailure);
  std::_Exit(kExitFailure);
}

bool launched_by_mpi_launcher() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"}) {
    if (std::getenv(var)) return true;
  }
  return false;
}

void abort_world(const World& world, int code) {
  if (world.mpi && world.size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

World& init_world(int* argc, char*** argv) {
  if (g_world) return *g_world;
  g_world = new World();
  World& w = *g_world;
  if (launched_by_mpi_launcher()) {
    int provided = 0;
    NEFTUNE_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    if (provided < MPI_THREAD_FUNNELED) {
      fatal(__FILE__, __LINE__,
            "MPI provides thread level " + std::to_string(provided) + " < MPI_THREAD_FUNNELED; neftune needs FUNNELED");
    }
    w.mpi = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    NEFTUNE_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &w.rank));
    NEFTUNE_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &w.size));
    MPI_Comm node;
    NEFTUNE_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &node));
    NEFTUNE_MPI_CHECK(MPI_Comm_rank(node, &w.local_rank));
    NEFTUNE_MPI_CHECK(MPI_Comm_size(node, &w.local_size));
    MPI_Comm_free(&node);
    w.host = make_mpi_communicator(MPI_COMM_WORLD);
  } else {
    w.host = make_local_communicator();
  }
  return w;
}

World& world() {
  if (!g_world) fatal(__FILE__, __LINE__, "world() called before init_world()");
  return *g_world;
}

void finalize_world() {
  if (!g_world) return;
  const bool mpi = g_world->mpi;
  g_world->host.reset();
  if (mpi) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  delete g_world;
  g_world = nullptr;
}

namespace {

int online_cores() { return static_cast<int>(std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN))); }

}  // namespace

int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return online_cores();
}

int capped_threads(int requested, const std::string& option, int ranks_on_node, bool warn) {
  const int cores = usable_cores(), online = online_cores();
  int threads = requested;
  if (requested > cores) {
    threads = cores;
    if (warn) {
      spdlog::warn(
          "[launch] {} {}: this process may run on {} core(s); using {} thread(s) (more would only take turns)", option,
          requested, cores, threads);
    }
  }
  const int64_t total = static_cast<int64_t>(threads) * std::max(1, ranks_on_node);
  if (warn && ranks_on_node > 1 && cores == online && total > online) {
    spdlog::warn(
        "[launch] {} {}: {} ranks x {} thread(s) = {} threads on {} core(s) of this node oversubscribe it "
        "(0 = divide the cores among the ranks)",
        option, requested, ranks_on_node, threads, total, online);
  }
  return threads;
}

int intra_op_threads(const World& w, int requested) {
  if (requested > 0) return capped_threads(requested, "train.threads", w.local_size, /*warn=*/w.local_rank == 0);
  const int online = online_cores(), mine = usable_cores();
  // A launcher that binds ranks (mpirun --bind-to core, srun --cpu-bind) has already split the cores;
  // otherwise every rank sees the whole node and takes its share.
  const int threads = mine < online ? mine : online / std::max(1, w.local_size);
  return std::max(1, threads);
}

void agree(Communicator& comm, const std::function<void()>& fn) {
  std::string message;
  int kind = 0;  // 0 ok, 1 user error, 2 other, 3 a stop request
  try {
    fn();
  } catch (const StopRequested& e) {
    kind = 3;
    message = e.what();
  } catch (const AgreedFailure& e) {
    kind = e.user_error() ? 1 : 2;
    message = e.what();
  } catch (const UserError& e) {
    kind = 1;
    message = e.what();
  } catch (const std::exception& e) {
    kind = 2;
    message = e.what();
  }
  if (comm.size() == 1) {
    if (kind == 3) throw StopRequested(message);
    if (kind) throw AgreedFailure(message, kind == 1);
    return;
  }
  const double first_failed = comm.all_reduce_scalar(kind ? comm.rank() : comm.size(), ReduceOp::min);
  if (first_failed >= comm.size()) return;
  const int root = static_cast<int>(first_failed);
  const std::string shared = comm.broadcast_string(std::to_string(kind) + message, root);
  const std::string text =
      shared.substr(1) + (root == comm.rank() ? "" : " (reported by rank " + std::to_string(root) + ")");
  if (shared[0] == '3') throw StopRequested(text);
  throw AgreedFailure(text, shared[0] == '1');
}

}  // namespace neftune::dist
