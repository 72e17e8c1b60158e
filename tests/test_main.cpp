// GoogleTest main for every test binary. Under mpirun it initialises the MPI world (distributed tests);
// only rank 0 prints results unless NEFTUNE_TEST_ALL_RANKS is set. Exit status: 1 when a test failed on
// any rank; else test::kFixtureSkipExit when a test skipped for a missing fixture on any rank (ctest:
// skipped); else 0.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "distributed/world.h"
#include "tests/test_util.h"
#include "trainer/run/logging.h"
#include "trainer/run/metrics.h"

namespace {

// Counts the tests skipped because a fixture is missing (NEFTUNE_REQUIRE_FIXTURE).
class FixtureSkips : public ::testing::EmptyTestEventListener {
 public:
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.skipped() && std::strstr(r.message(), neftune::test::kFixtureAbsent) != nullptr) ++count;
  }
  int count = 0;
};

}  // namespace

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
  auto* skips = new FixtureSkips;  // owned by GoogleTest
  ::testing::UnitTest::GetInstance()->listeners().Append(skips);
  double failed = RUN_ALL_TESTS() != 0 ? 1 : 0, skipped = skips->count > 0 ? 1 : 0;
  if (world.size > 1) {  // a failure (or a skip) on any rank counts on every rank
    failed = world.host->all_reduce_scalar(failed, neftune::dist::ReduceOp::max);
    skipped = world.host->all_reduce_scalar(skipped, neftune::dist::ReduceOp::max);
  }
  neftune::dist::finalize_world();
  if (failed > 0) return 1;
  return skipped > 0 ? neftune::test::kFixtureSkipExit : 0;
}
