// neftune under mpirun: a failing rank takes every rank down with its message (never a hang), ranks that
// loaded different configs refuse to start, and a 2-rank quick run produces the single-writer outputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include <ATen/Context.h>

#include "tests/test_util.h"

namespace neftune {
namespace {

namespace fs = std::filesystem;
using test::run_command;
using test::TempDir;
using test::write_file;
using ::testing::HasSubstr;

using test::mpirun;

const char* kTiny =
    "model: {init: {dim: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, hidden_dim: 64}}\n"
    "data: {builtin_train_size: 32, builtin_eval_size: 8, max_seq_len: 256}\n"
    "train: {max_steps: 6, micro_batch_size: 2, lr: 1e-3, eval_every_steps: 3}\n"
    "logging: {progress: off}\n";

TEST(LaunchDist, OneFailingRankTakesAllRanksDownWithItsMessage) {
  TempDir d;
  write_file(d / "c.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  const auto r = run_command("NEFTUNE_INJECT_FAILURE=1:3 timeout 120 " + mpirun(2) + test::neftune_bin() + " train " +
                             (d / "c.yaml"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "timed out: a rank hung";  // the hang check: `timeout`, not a timing
  EXPECT_THAT(r.output, HasSubstr("injected failure on rank 1 at step 3"));
}

TEST(LaunchDist, RanksWithDifferentConfigsRefuseToStart) {
  TempDir d;
  write_file(d / "a.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  write_file(d / "b.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\nneftune: {alpha: 10}\n");
  // Rank 0 reads a.yaml, rank 1 b.yaml. Chosen by the rank Open MPI puts in the environment, not by an MPMD
  // command line ("-np 1 A : -np 1 B"), on which Open MPI 5.0.7's mpirun (Debian 13) crashes (open-mpi/ompi#13303).
  write_file(d / "rank.sh", "#!/bin/sh\nexec " + test::neftune_bin() + " train " + (d / "") +
                                "$([ \"$OMPI_COMM_WORLD_RANK\" = 0 ] && echo a || echo b).yaml\n");
  const auto r = run_command("timeout 120 " + mpirun(2) + "sh " + (d / "rank.sh"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("loaded a different effective config than rank 0"));
  EXPECT_FALSE(fs::exists(d / "out/final"));
}

TEST(LaunchDist, BadInputUnderMpirunIsReportedByEveryRankAndExits2) {
  TempDir d;
  write_file(d / "c.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\ndata: {train: /nonexistent.json}\n");
  // (the duplicate `data` section is itself the first error every rank reports)
  const auto r = run_command("timeout 120 " + mpirun(2) + test::neftune_bin() + " train " + (d / "c.yaml"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[r0] [error]"));
  EXPECT_THAT(r.output, HasSubstr("[r1] [error]"));
  EXPECT_THAT(r.output, HasSubstr("duplicate key 'data'"));
}

// NCCL where no rank has a GPU: the ranks agree on it in a collective of their own before any NCCL id is
// broadcast, so every rank reports the same error and exits 2 instead of one rank stopping alone.
TEST(LaunchDist, NcclWithoutGpusIsReportedByEveryRankAndExits2) {
  if (at::hasCUDA()) GTEST_SKIP() << "a GPU is visible: this case needs ranks without one";
  TempDir d;
  write_file(d / "c.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  const auto r = run_command("timeout 120 " + mpirun(2) + test::neftune_bin() + " train " + (d / "c.yaml") +
                             " --set distributed.backend=nccl");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[r0] [error]"));
  EXPECT_THAT(r.output, HasSubstr("[r1] [error]"));
  EXPECT_THAT(r.output, HasSubstr("2 of 2 rank(s) have none"));
  EXPECT_FALSE(fs::exists(d / "out/final"));
}

TEST(LaunchDist, TwoRankRunWritesOneSetOfOutputs) {
  TempDir d;
  write_file(d / "c.yaml", std::string(kTiny) + "output_dir: " + (d / "out") + "\n");
  const auto r = run_command("timeout 300 " + mpirun(2) + test::neftune_bin() + " train " + (d / "c.yaml"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto lines = test::read_jsonl(d / "out/metrics.jsonl");
  int steps = 0;
  for (const auto& l : lines) steps += l.contains("loss") ? 1 : 0;
  EXPECT_EQ(steps, 6);  // rank 0 alone writes metrics
  EXPECT_TRUE(fs::exists(d / "out/final/model.safetensors"));
  EXPECT_FALSE(fs::exists(d / "out/train.rank1.log"));
}

}  // namespace
}  // namespace neftune
