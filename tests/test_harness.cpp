// The test binaries' exit status (tests/test_main.cpp), which ctest reads: a test skipped because a
// reference fixture is missing makes its binary count as skipped (exit 77), never as passed, and never
// hides a failure beside it. The cases below are disabled and run only by the test at the end, which
// starts this binary again on chosen ones.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/test_util.h"

namespace neftune {
namespace {

TEST(Harness, DISABLED_SkipsForAMissingFixture) { GTEST_SKIP() << "fixture x.json " << test::kFixtureAbsent; }
TEST(Harness, DISABLED_SkipsForAnotherReason) { GTEST_SKIP() << "not applicable on this machine"; }
TEST(Harness, DISABLED_Fails) { FAIL() << "on purpose"; }
TEST(Harness, DISABLED_Passes) { SUCCEED(); }

TEST(Harness, AMissingFixtureMakesTheBinarySkippedButNeverHidesAFailure) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  auto exit_code = [&](const std::string& cases) {
    const test::CommandResult r =
        test::run_command(self + " --gtest_also_run_disabled_tests --gtest_filter='" + cases + "'");
    return r.exit_code;
  };
  EXPECT_EQ(exit_code("Harness.DISABLED_Passes"), 0);
  EXPECT_EQ(exit_code("Harness.DISABLED_Passes:Harness.DISABLED_SkipsForAnotherReason"), 0);
  EXPECT_EQ(exit_code("Harness.DISABLED_Passes:Harness.DISABLED_SkipsForAMissingFixture"), test::kFixtureSkipExit);
  EXPECT_EQ(exit_code("Harness.DISABLED_Fails:Harness.DISABLED_SkipsForAMissingFixture"), 1);
  EXPECT_EQ(exit_code("Harness.DISABLED_Fails"), 1);
}

}  // namespace
}  // namespace neftune
