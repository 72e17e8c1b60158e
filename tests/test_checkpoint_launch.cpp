// Checkpoints through the neftune binary: bit-exact resume under mpirun -np 2, resharding 2 -> 1,
// 1 -> 4 and 4 -> 2, preemption by SIGTERM/SIGUSR1 (exit code 75, then resume), SIGKILL at random points
// of checkpoint saves (the previous checkpoint survives and the run still ends bit-identical), and a
// missing rank file reported by every rank, and a second run on a locked output_dir refused by every rank.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "tests/test_util.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/run/checkpoint_format.h"
#include "trainer/run/run_dirs.h"

namespace neftune {
namespace {

namespace fs = std::filesystem;
using test::run_command;
using test::TempDir;
using ::testing::HasSubstr;

std::string mpirun(int np) { return "timeout 300 " + test::mpirun(np); }

// Global batch 8 at every world size: micro-batch 2 x accumulation (4 / N) x N.
std::string config(const std::string& out, int world, int steps = 20) {
  return "output_dir: " + out +
         "\nmodel: {init: {dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, hidden_dim: 48, tie_embeddings: false}}"
         "\ndata: {builtin_train_size: 36, builtin_eval_size: 0, max_seq_len: 200}"
         "\nneftune: {alpha: 5}"
         "\ntrain: {micro_batch_size: 2, accumulation_steps: " +
         std::to_string(4 / world) + ", max_steps: " + std::to_string(steps) +
         ", lr: 2.0e-3, weight_decay: 0.01}"
         "\ncheckpoint: {every_steps: 5}\nlogging: {progress: off, level: warn}\n";
}

std::string train_cmd(const std::string& yaml_path) { return test::neftune_bin() + " train " + yaml_path; }

std::vector<double> losses(const std::string& out) {
  std::vector<double> v;
  for (const auto& l : test::read_jsonl(out + "/metrics.jsonl"))
    if (l.contains("loss")) v.push_back(l["loss"].get<double>());
  return v;
}

std::map<std::string, at::Tensor> final_weights(const std::string& out) {
  const model::HfCheckpoint c(out + "/final");
  std::map<std::string, at::Tensor> w;
  for (const auto& p : model::all_params(c.config())) w[p.name] = c.load(p.name);
  return w;
}

// |w_a - w_b| relative to how far training moved the weights from `w0`-less reference: the
// equivalence measure of the FSDP test (fp32 reduction order only).
double relative_difference(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b) {
  double d2 = 0, n2 = 0;
  for (const auto& [name, t] : a) {
    d2 += (t - b.at(name)).pow(2).sum().item<double>();
    n2 += t.pow(2).sum().item<double>();
  }
  return std::sqrt(d2 / n2);
}

class CheckpointLaunch : public ::testing::Test {
 protected:
  // The uninterrupted 2-rank run every scenario is compared with.
  static void SetUpTestSuite() {
    ref_ = new TempDir();
    test::write_file(*ref_ / "a.yaml", config(*ref_ / "a", 2));
    const auto r = run_command(mpirun(2) + train_cmd(*ref_ / "a.yaml"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete ref_; }
  static std::string ref() { return *ref_ / "a"; }
  static TempDir* ref_;
};
TempDir* CheckpointLaunch::ref_ = nullptr;

TEST_F(CheckpointLaunch, PreemptedAndResumedRunIsBitIdenticalUnderMpirun2) {
  TempDir d;
  test::write_file(d / "b.yaml", config(d / "b", 2));
  const auto stopped = run_command("NEFTUNE_INJECT_STOP=10 " + mpirun(2) + train_cmd(d / "b.yaml"));
  ASSERT_EQ(stopped.exit_code, 75) << stopped.output;  // kExitPreempted: requeue me
  EXPECT_TRUE(fs::exists(d / "b/checkpoints/step-00000010/meta.json"));
  EXPECT_FALSE(fs::exists(d / "b/final"));
  const auto resumed = run_command(mpirun(2) + train_cmd(d / "b.yaml"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const auto la = losses(ref()), lb = losses(d / "b");
  ASSERT_EQ(la.size(), 20u);
  EXPECT_EQ(la, lb);  // every step's loss, bit for bit
  EXPECT_EQ(test::read_file(ref() + "/final/model.safetensors"), test::read_file(d / "b/final/model.safetensors"));
}

TEST_F(CheckpointLaunch, ResumesAtAnotherWorldSizeByReslicing) {
  for (const auto& [from, to] : std::vector<std::pair<int, int>>{{2, 1}, {1, 4}, {4, 2}}) {
    SCOPED_TRACE(std::to_string(from) + " -> " + std::to_string(to) + " ranks");
    TempDir d;
    test::write_file(d / "from.yaml", config(d / "r", from));
    test::write_file(d / "to.yaml", config(d / "r", to));
    const auto first = run_command("NEFTUNE_INJECT_STOP=10 " + mpirun(from) + train_cmd(d / "from.yaml"));
    ASSERT_EQ(first.exit_code, 75) << first.output;
    const auto second = run_command(mpirun(to) + train_cmd(d / "to.yaml"));
    ASSERT_EQ(second.exit_code, 0) << second.output;
    const auto la = losses(ref()), lb = losses(d / "r");
    ASSERT_EQ(lb.size(), 20u);
    // The FSDP equivalence tolerance: fp32 reduction order only (observed <= 5e-8 relative per step).
    for (size_t i = 0; i < 20; ++i) EXPECT_NEAR(lb[i], la[i], 1e-6 * la[i]) << "step " << i + 1;
    EXPECT_LT(relative_difference(final_weights(ref()), final_weights(d / "r")), 1e-5);
  }
}

TEST_F(CheckpointLaunch, MissingRankFileIsReportedByEveryRankWithoutAHang) {
  TempDir d;
  fs::copy(ref() + "/checkpoints/step-00000020", d / "ckpt", fs::copy_options::recursive);
  fs::remove(d / "ckpt/rank-00001-of-00002.safetensors");
  test::write_file(d / "c.yaml", config(d / "c", 2));
  const auto r = run_command(mpirun(2) + train_cmd(d / "c.yaml") + " --set checkpoint.resume=" + (d / "ckpt"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("rank-00001-of-00002.safetensors: missing rank file"));
  EXPECT_THAT(r.output, HasSubstr("[r1] [error]"));
}

// Another process (here: this test) holds output_dir's lock, as a running neftune does: a 2-rank run on
// the same output_dir stops before any work, every rank with the same message, and writes nothing.
TEST(CheckpointLocks, ASecondRunOnALockedOutputDirIsRefusedByEveryRank) {
  TempDir d;
  fs::create_directories(d / "r");
  const run::DirLock held(d / "r", "output_dir");
  test::write_file(d / "c.yaml", config(d / "r", 2));
  const auto r = run_command(mpirun(2) + train_cmd(d / "c.yaml"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("output_dir " + (d / "r") + ": in use by another neftune run (pid " +
                                  std::to_string(::getpid())));
  EXPECT_THAT(r.output, HasSubstr("[r1] [error]"));
  EXPECT_FALSE(fs::exists(d / "r/metrics.jsonl"));
  EXPECT_FALSE(fs::exists(d / "r/checkpoints"));
}

TEST(CheckpointSignals, SigtermAndSigusr1CheckpointAndExit75ThenResume) {
  for (const int sig : {SIGTERM, SIGUSR1}) {
    SCOPED_TRACE(sig == SIGTERM ? "SIGTERM" : "SIGUSR1");
    TempDir d;
    test::write_file(d / "c.yaml", config(d / "r", 1, 400));
    const pid_t pid = fork();
    if (pid == 0) {
      execl(test::neftune_bin().c_str(), "neftune", "train", (d / "c.yaml").c_str(), nullptr);
      _exit(127);
    }
    // Wait for a few steps, then ask it to stop.
    for (int i = 0; i < 600 && losses(d / "r").size() < 3; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 75);
    const size_t done = losses(d / "r").size();
    ASSERT_GE(done, 3u);
    ASSERT_LT(done, 400u) << "finished before the signal arrived";
    run::validate_checkpoint(d / ("r/checkpoints/" + test::read_file(d / "r/checkpoints/latest").substr(0, 13)));
    const auto r = run_command(train_cmd(d / "c.yaml") + " --set train.max_steps=" + std::to_string(done + 2));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(losses(d / "r").size(), done + 2);
  }
}

TEST(CheckpointSignals, SigkillDuringSavesNeverLosesTheLastCompleteCheckpoint) {
  // A model big enough that saves take a while (~12 MB per checkpoint), saved every step.
  auto cfg = [](const std::string& out) {
    return "output_dir: " + out +
           "\nmodel: {init: {dim: 256, n_layers: 4, n_heads: 4, n_kv_heads: 2, hidden_dim: 512}}"
           "\ndata: {builtin_train_size: 64, builtin_eval_size: 0, max_seq_len: 200}"
           "\ntrain: {micro_batch_size: 2, max_steps: 16, lr: 1.0e-3}"
           "\ncheckpoint: {every_steps: 1, keep_last: 2}\nlogging: {progress: off, level: warn}\n";
  };
  TempDir d;
  test::write_file(d / "ref.yaml", cfg(d / "ref"));
  ASSERT_EQ(run_command(train_cmd(d / "ref.yaml")).exit_code, 0);
  test::write_file(d / "k.yaml", cfg(d / "k"));
  std::mt19937 rng(12345);
  int kills = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const pid_t pid = fork();
    if (pid == 0) {
      const int fd = ::open("/dev/null", O_WRONLY);
      dup2(fd, 1), dup2(fd, 2);
      execl(test::neftune_bin().c_str(), "neftune", "train", (d / "k.yaml").c_str(), nullptr);
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1200 + rng() % 1500));
    if (kill(pid, SIGKILL) == 0) ++kills;
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break;  // it finished first
    // Whatever the kill interrupted, every checkpoint under its final name is complete. (On a loaded
    // machine the kill can come before the first save has made the directory.)
    if (!fs::exists(d / "k/checkpoints")) continue;
    for (const auto& e : fs::directory_iterator(d / "k/checkpoints")) {
      if (e.path().filename().string().rfind("step-", 0) == 0) {
        EXPECT_NO_THROW(run::validate_checkpoint(e.path().string())) << e.path();
      }
    }
  }
  EXPECT_GT(kills, 0);
  const auto r = run_command(train_cmd(d / "k.yaml"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Same world size: every resume is exact, so the end result is the uninterrupted run's, bit for bit.
  EXPECT_EQ(test::read_file(d / "k/final/model.safetensors"), test::read_file(d / "ref/final/model.safetensors"));
  EXPECT_EQ(losses(d / "k"), losses(d / "ref"));
}

}  // namespace
}  // namespace neftune
