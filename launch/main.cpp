// neftune: fine-tune LLaMA-family models with NEFTune, sharded FSDP-style over MPI or NCCL.
#include <cstring>

#include "config/errors.h"
#include "distributed/world.h"
#include "launch/commands.h"
#include "trainer/run/logging.h"
#include "trainer/run/metrics.h"
#include "trainer/run/stop_signal.h"

int main(int argc, char** argv) {
  // train and serve turn SIGTERM/SIGUSR1 into "checkpoint and exit 75": installed before anything else,
  // so a scheduler's early signal during start-up is not fatal (setup stops at its next check, exit 75).
  if (argc > 1 && (std::strcmp(argv[1], "train") == 0 || std::strcmp(argv[1], "serve") == 0))
    neftune::run::install_stop_handlers();
  neftune::run::tune_allocator();
  neftune::dist::World& world = neftune::dist::init_world(&argc, &argv);
  neftune::run::setup_console_logging(world.rank);
  const int code = neftune::launch::run_cli(argc, argv, world);
  if (code == neftune::kExitPreempted && world.rank == 0) neftune::run::write_stop_marker();
  neftune::dist::finalize_world();
  return code;
}
