// neftune: fine-tune LLaMA-family models with NEFTune, sharded FSDP-style over MPI or NCCL.
#include "distributed/world.h"
#include "launch/commands.h"
#include "trainer/run/logging.h"
#include "trainer/run/metrics.h"

int main(int argc, char** argv) {
  neftune::run::tune_allocator();
  neftune::dist::World& world = neftune::dist::init_world(&argc, &argv);
  neftune::run::setup_console_logging(world.rank);
  const int code = neftune::launch::run_cli(argc, argv, world);
  neftune::dist::finalize_world();
  return code;
}
