// GoogleTest main for every test binary. Under mpirun it initialises the MPI world (distributed tests);
// only rank 0 prints results unless NEFTUNE_TEST_ALL_RANKS is set.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "distributed/world.h"
#include "trainer/run/logging.h"
#include "trainer/run/metrics.h"

int main(int argc, char** argv) {
  neftune::run::tune_allocator();
  auto& world = neftune::dist::init_world(&argc, &argv);
  neftune::run::setup_console_logging(world.rank, "warn");
  at::set_num_threads(1);
  ::testing::InitGoogleTest(&argc, argv);
  if (world.rank != 0 && !std::getenv("NEFTUNE_TEST_ALL_RANKS")) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = RUN_ALL_TESTS();
  if (world.size > 1) {
    // A failure on any rank fails the test run on every rank.
    rc = world.host->all_reduce_scalar(rc, neftune::dist::ReduceOp::max) > 0 ? 1 : 0;
  }
  neftune::dist::finalize_world();
  return rc;
}
