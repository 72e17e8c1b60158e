// The daemon end to end: `mpirun -np 2 neftune serve` on loopback, driven over real HTTP (cpp-httplib)
// and through the spool directory: validation (400), auth (401), body limit (413), sanitised names,
// failing jobs failing alone, cancel, SIGUSR1 + restart resuming the interrupted job, SIGKILL + restart
// losing no queued job, and a sweep producing its report.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/test_util.h"

namespace neftune {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using json = nlohmann::json;
using test::TempDir;

const char* kJob =
    "model: {init: {dim: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1, hidden_dim: 64}}\n"
    "data: {builtin_train_size: 32, builtin_eval_size: 8, max_seq_len: 256}\n"
    "train: {max_steps: STEPS, micro_batch_size: 2, lr: 1.0e-3}\n"
    "checkpoint: {every_steps: 5}\n"
    "logging: {progress: off}\n";

std::string job(int steps, const std::string& extra = "") {
  std::string s = kJob;
  s.replace(s.find("STEPS"), 5, std::to_string(steps));
  return s + extra;
}

// A daemon under mpirun in its own process group.
class Daemon {
 public:
  Daemon(const std::string& spool, std::vector<std::string> extra = {}, int ranks = 2) : spool_(spool) {
    fs::remove(fs::path(spool) / "daemon.json");
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      const std::string log = spool + ".log";
      FILE* f = freopen(log.c_str(), "a", stdout);
      (void)f;
      dup2(fileno(stdout), 2);
      std::string cmd = "exec " + test::mpirun(ranks) + test::neftune_bin() + " serve --spool " + spool +
                        " --listen 127.0.0.1:0 --poll-ms 100";  // exec: this process becomes mpirun
      for (const auto& a : extra) cmd += " " + a;
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    setpgid(pid_, pid_);
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      try {
        port_ = test::read_json(spool + "/daemon.json")["port"].get<int>();
      } catch (const std::exception&) {
      }
      if (exited()) break;
    }
  }
  ~Daemon() {
    if (!done_) {
      killpg(pid_, SIGKILL);
      wait_exit();
    }
  }
  int port() const { return port_; }
  httplib::Client client(const std::string& token = "") const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    if (!token.empty()) c.set_bearer_token_auth(token.c_str());
    return c;
  }
  bool exited() {
    if (done_) return true;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      done_ = true;
      code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return done_;
  }
  int wait_exit(int timeout_s = 120) {
    for (int i = 0; i < timeout_s * 20 && !exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!done_) {
      killpg(pid_, SIGKILL);
      int st = 0;
      waitpid(pid_, &st, 0);
      done_ = true;
      code_ = -1;
    }
    return code_;
  }
  void signal(int sig) { kill(pid_, sig); }       // mpirun forwards SIGUSR1 to the ranks
  void kill_all() { killpg(pid_, SIGKILL); }      // mpirun and every rank, no chance to clean up

 private:
  std::string spool_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool done_ = false;
  int code_ = -1;
};

json get_json(httplib::Client& c, const std::string& path) {
  auto r = c.Get(path.c_str());
  if (!r) return json();
  return json::parse(r->body);
}

std::string state_of(httplib::Client& c, const std::string& id) {
  const json j = get_json(c, "/v1/jobs/" + id);
  return j.is_object() ? j.value("state", "") : "";
}

bool wait_for(const std::function<bool()>& cond, int timeout_s = 180) {
  for (int i = 0; i < timeout_s * 10; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(Serve, HttpApiValidatesQueuesRunsAndReports) {
  TempDir d;
  const std::string spool = d / "spool";
  Daemon daemon(spool, {"--no-default-job", "--max-body-bytes", "65536"});
  ASSERT_GT(daemon.port(), 0) << test::read_file(spool + ".log");
  auto c = daemon.client();

  auto bad = c.Post("/v1/jobs", "train: {lrr: 1}\n", "application/yaml");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("did you mean 'train.lr'"));
  auto broken = c.Post("/v1/jobs", "train: [1, 2\n", "application/yaml");
  EXPECT_EQ(broken->status, 400);
  auto huge = c.Post("/v1/jobs", std::string(70000, '#'), "application/yaml");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);

  // A hostile name cannot leave the spool.
  auto ok = c.Post("/v1/jobs?name=..%2F..%2Fetc%2Fpasswd", job(12), "application/yaml");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 201) << ok->body;
  const std::string id = json::parse(ok->body)["id"];
  EXPECT_EQ(id.find('/'), std::string::npos);
  EXPECT_EQ(id.find(".."), std::string::npos);
  EXPECT_TRUE(wait_for([&] { return state_of(c, id) == "done"; })) << test::read_file(spool + ".log");
  EXPECT_TRUE(fs::exists(spool + "/done/" + id + "/output/final/model.safetensors"));
  const json st = get_json(c, "/v1/jobs/" + id);
  EXPECT_EQ(st["step"], 12);
  EXPECT_GT(st["first_step_at"].get<double>(), st["submitted_at"].get<double>());

  // A job whose loss goes non-finite fails alone; the next job runs.
  std::string nan_job = job(40);
  nan_job.replace(nan_job.find("lr: 1.0e-3"), 10, "lr: 1.0e+30");
  auto nan = c.Post("/v1/jobs?name=nan", nan_job, "application/yaml");
  auto after = c.Post("/v1/jobs?name=after", job(4), "application/yaml");
  ASSERT_EQ(nan->status, 201);
  const std::string nan_id = json::parse(nan->body)["id"], after_id = json::parse(after->body)["id"];
  EXPECT_TRUE(wait_for([&] { return state_of(c, after_id) == "done"; }));
  EXPECT_EQ(state_of(c, nan_id), "failed");
  EXPECT_THAT(test::read_file(spool + "/failed/" + nan_id + "/error.txt"), HasSubstr("loss is"));

  // Through the spool: a partial file is ignored until renamed into place; a job whose data is missing
  // fails with its error.
  test::write_file(spool + "/incoming/.late.yaml.tmp", job(3));
  test::write_file(spool + "/incoming/broken.yaml", "data: {train: /nonexistent/x.json}\n");
  EXPECT_TRUE(wait_for([&] {
    const json all = get_json(c, "/v1/jobs");  // (a named value: the range must outlive the loop)
    for (const auto& j : all["jobs"])
      if (j["name"] == "broken" && j["state"] == "failed") return true;
    return false;
  })) << test::read_file(spool + ".log");
  EXPECT_TRUE(fs::exists(spool + "/incoming/.late.yaml.tmp"));

  // Metrics in Prometheus text format.
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_THAT(m->body, HasSubstr("neftune_jobs{state=\"done\"}"));
  EXPECT_THAT(m->body, HasSubstr("neftune_queue_length"));

  // A sweep of two alphas: two jobs, then a report with a table and loss curves.
  auto sw = c.Post("/v1/jobs?name=sweep", job(10, "sweep: {neftune.alpha: [0, 5]}\n"), "application/yaml");
  ASSERT_EQ(sw->status, 201) << sw->body;
  const json swj = json::parse(sw->body);
  ASSERT_EQ(swj["ids"].size(), 2u);
  const std::string report = spool + "/reports/" + swj["sweep"].get<std::string>();
  EXPECT_TRUE(wait_for([&] { return fs::exists(report + "/loss.svg"); }, 300));
  EXPECT_THAT(test::read_file(report + "/report.md"), HasSubstr("neftune.alpha=5.0"));
  EXPECT_THAT(test::read_file(report + "/loss.svg"), HasSubstr("<polyline"));
  EXPECT_EQ(test::read_json(report + "/report.json").size(), 2u);

  daemon.signal(SIGUSR1);
  EXPECT_EQ(daemon.wait_exit(), 0) << test::read_file(spool + ".log");  // idle: nothing left to resume
}

TEST(Serve, TokenRequiredAndNonLoopbackNeedsOne) {
  TempDir d;
  test::write_file(d / "token", "s3cret\n");
  Daemon daemon(d / "spool", {"--no-default-job", "--token-file", d / "token"});
  ASSERT_GT(daemon.port(), 0);
  auto anon = daemon.client();
  auto r = anon.Get("/v1/jobs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  auto wrong = daemon.client("guess");
  EXPECT_EQ(wrong.Get("/v1/jobs")->status, 401);
  auto right = daemon.client("s3cret");
  EXPECT_EQ(right.Get("/v1/jobs")->status, 200);
  daemon.signal(SIGUSR1);
  daemon.wait_exit();

  std::string cmd = "timeout 60 " + test::neftune_bin() + " serve --spool " + (d / "s2") + " --listen 0.0.0.0:0";
  const auto open = test::run_command(cmd);
  EXPECT_EQ(open.exit_code, 2);
  EXPECT_THAT(open.output, HasSubstr("requires a bearer token"));
}

TEST(Serve, CancelStopsARunningJobWithACheckpointAndDropsAQueuedOne) {
  TempDir d;
  const std::string spool = d / "spool";
  Daemon daemon(spool);  // a new spool gets the quick-start job
  ASSERT_GT(daemon.port(), 0);
  auto c = daemon.client();
  std::string qs;
  const json all = get_json(c, "/v1/jobs");
  for (const auto& j : all["jobs"]) qs = j["id"];
  ASSERT_THAT(qs, HasSubstr("quickstart")) << test::read_file(spool + ".log");
  const std::string queued = json::parse(c.Post("/v1/jobs?name=later", job(5), "application/yaml")->body)["id"];
  EXPECT_EQ(c.Delete(("/v1/jobs/" + queued).c_str())->status, 200);
  EXPECT_EQ(state_of(c, queued), "cancelled");
  EXPECT_TRUE(wait_for([&] { return get_json(c, "/v1/jobs/" + qs).value("step", 0) >= 6; }));
  auto del = c.Delete(("/v1/jobs/" + qs).c_str());
  EXPECT_EQ(del->status, 202);
  EXPECT_TRUE(wait_for([&] { return state_of(c, qs) == "cancelled"; }));
  EXPECT_TRUE(fs::exists(spool + "/cancelled/" + qs + "/output/checkpoints/latest"));
  EXPECT_EQ(c.Delete(("/v1/jobs/" + qs).c_str())->status, 409);
  EXPECT_EQ(c.Delete("/v1/jobs/000999-nope")->status, 404);
  daemon.signal(SIGUSR1);
  EXPECT_EQ(daemon.wait_exit(), 0) << test::read_file(spool + ".log");
}

TEST(Serve, SignalThenRestartResumesTheJobAndSigkillLosesNoQueuedJob) {
  TempDir d;
  const std::string spool = d / "spool";
  std::string first, second, third;
  {
    Daemon daemon(spool, {"--no-default-job"});
    ASSERT_GT(daemon.port(), 0);
    auto c = daemon.client();
    first = json::parse(c.Post("/v1/jobs?name=long", job(400), "application/yaml")->body)["id"];
    second = json::parse(c.Post("/v1/jobs?name=next", job(6), "application/yaml")->body)["id"];
    EXPECT_TRUE(wait_for([&] { return get_json(c, "/v1/jobs/" + first).value("step", 0) >= 7; }));
    daemon.signal(SIGUSR1);  // checkpoint and exit: work is left, so 75
    EXPECT_EQ(daemon.wait_exit(), 75) << test::read_file(spool + ".log");
  }
  EXPECT_TRUE(fs::exists(spool + "/running/" + first + "/output/checkpoints/latest"));
  EXPECT_TRUE(fs::exists(spool + "/queue/" + second + "/job.yaml"));
  {
    // Restart: the interrupted job resumes first (from its checkpoint, not from step 1).
    Daemon daemon(spool, {"--no-default-job"});
    ASSERT_GT(daemon.port(), 0);
    auto c = daemon.client();
    const int resumed_at = test::read_json(spool + "/running/" + first + "/status.json").value("step", 0);
    EXPECT_TRUE(wait_for([&] { return get_json(c, "/v1/jobs/" + first).value("step", 0) > resumed_at; }));
    const auto lines = test::read_jsonl(spool + "/running/" + first + "/output/metrics.jsonl");
    EXPECT_GE(lines.front()["step"].get<int>(), 1);
    third = json::parse(c.Post("/v1/jobs?name=third", job(4), "application/yaml")->body)["id"];
    daemon.kill_all();  // SIGKILL: no checkpoint, no cleanup
    daemon.wait_exit();
  }
  {
    Daemon daemon(spool, {"--no-default-job", "--exit-when-idle"});
    EXPECT_EQ(daemon.wait_exit(600), 0) << test::read_file(spool + ".log");
  }
  for (const auto& id : {first, second, third}) EXPECT_TRUE(fs::exists(spool + "/done/" + id)) << id;
  // The long job ran every step exactly once in its metrics, across three daemons.
  int steps = 0;
  for (const auto& l : test::read_jsonl(spool + "/done/" + first + "/output/metrics.jsonl"))
    if (l.contains("loss")) {
      EXPECT_EQ(l["step"].get<int>(), ++steps);
    }
  EXPECT_EQ(steps, 400);
}

}  // namespace
}  // namespace neftune
