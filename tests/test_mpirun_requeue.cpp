// launch/mpirun-requeue.sh around `mpirun -np 2 neftune train`: SIGTERM to the wrapper, or to the whole
// process group (mpirun included, which then exits 1 on its own), ends the run with a complete checkpoint
// and exit code 75; other exit codes pass through.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/test_util.h"
#include "trainer/run/checkpoint_format.h"

namespace neftune {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using ::testing::HasSubstr;

std::string wrapper() { return std::string(NEFTUNE_SOURCE_DIR) + "/launch/mpirun-requeue.sh"; }

std::string config(const std::string& out, int steps) {
  return "output_dir: " + out +
         "\nmodel: {init: {dim: 32, n_layers: 1, n_heads: 2, n_kv_heads: 1, hidden_dim: 64}}"
         "\ndata: {builtin_train_size: 64, builtin_eval_size: 0, max_seq_len: 200}"
         "\ntrain: {micro_batch_size: 2, max_steps: " +
         std::to_string(steps) + ", lr: 1.0e-3}\nlogging: {progress: off, level: warn}\n";
}

size_t steps_done(const std::string& out) {
  return fs::exists(out + "/metrics.jsonl") ? test::read_jsonl(out + "/metrics.jsonl").size() : 0;
}

// Starts `bash mpirun-requeue.sh mpirun -np 2 neftune train` in a process group of its own, waits for a
// few steps, sends SIGTERM to the wrapper alone or to the whole group, and returns the exit status.
int stopped_run(const TempDir& d, bool whole_group) {
  test::write_file(d / "c.yaml", config(d / "r", 3000));
  const std::string line = "exec bash " + wrapper() + " " + test::mpirun(2) + test::neftune_bin() + " train " +
                           (d / "c.yaml") + " > " + (d / "log.txt") + " 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", line.c_str(), nullptr);
    _exit(127);
  }
  setpgid(pid, pid);
  for (int i = 0; i < 1200 && steps_done(d / "r") < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(whole_group ? -pid : pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void expect_complete_checkpoint(const TempDir& d) {
  const size_t done = steps_done(d / "r");
  EXPECT_GE(done, 3u);
  EXPECT_LT(done, 3000u) << "finished before the signal arrived";
  const std::string latest = test::read_file(d / "r/checkpoints/latest").substr(0, 13);
  EXPECT_NO_THROW(run::validate_checkpoint(d / ("r/checkpoints/" + latest))) << latest;
  EXPECT_FALSE(fs::exists(d / "r/final"));
}

TEST(MpirunRequeue, SigtermToTheWrapperCheckpointsAndExits75) {
  TempDir d;
  EXPECT_EQ(stopped_run(d, false), 75) << test::read_file(d / "log.txt");
  expect_complete_checkpoint(d);
  EXPECT_THAT(test::read_file(d / "log.txt"), HasSubstr("got SIGTERM: asking the ranks to checkpoint and stop"));
}

// A signal to the process group reaches mpirun too: it forwards SIGTERM, the ranks save and exit 75, and
// mpirun itself exits 1. Rank 0's marker file tells the wrapper what happened.
TEST(MpirunRequeue, SigtermToTheWholeGroupStillExits75) {
  TempDir d;
  EXPECT_EQ(stopped_run(d, true), 75) << test::read_file(d / "log.txt");
  expect_complete_checkpoint(d);
  EXPECT_THAT(test::read_file(d / "log.txt"), HasSubstr("but the ranks wrote a checkpoint and exited 75"));
}

TEST(MpirunRequeue, OtherExitCodesPassThrough) {
  TempDir d;
  test::write_file(d / "ok.yaml", config(d / "ok", 2));
  const auto ok = test::run_command("bash " + wrapper() + " " + test::mpirun(2) + test::neftune_bin() + " train " +
                                    (d / "ok.yaml"));
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_TRUE(fs::exists(d / "ok/final/model.safetensors"));
  test::write_file(d / "bad.yaml", config(d / "bad", 2) + "neftune: {alpha: -1}\n");
  const auto bad = test::run_command("bash " + wrapper() + " " + test::mpirun(2) + test::neftune_bin() + " train " +
                                     (d / "bad.yaml"));
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("neftune.alpha: must be >= 0"));
}

}  // namespace
}  // namespace neftune
