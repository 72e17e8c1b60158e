// The daemon end to end: `mpirun -np 2 neftune serve` on loopback, driven over real HTTP (cpp-httplib)
// and through the spool directory: validation (400), auth (401), body limit (413), sanitised names,
// failing jobs failing alone, cancel, SIGUSR1 + restart resuming the interrupted job, SIGKILL + restart
// losing no queued job, and a sweep producing its report. Then what the daemon refuses: a second daemon
// on its spool, bad --listen/--spool, jobs writing outside their directory, links and FIFOs in
// incoming/, oversized sweeps, queues and files, unknown routes and methods; and SIGTERM during a
// long final eval.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "tests/test_util.h"

namespace neftune {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
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

// Every process under `root` (from /proc: pid -> parent pid).
std::vector<pid_t> descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = test::read_file(e.path().string() + "/stat");  // "pid (comm) state ppid ..."
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    if (rest >> state >> ppid) children.emplace(ppid, std::stoi(name));
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    for (auto [it, end] = children.equal_range(p); it != end; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

// Waits (up to 30 s) until `pid` has exited: gone, or a zombie (its files, and so its locks, released).
void wait_for_exit(pid_t pid) {
  for (int i = 0; i < 600; ++i) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (!in || close == std::string::npos || stat.compare(close + 2, 1, "Z") == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// A daemon under mpirun in its own process group.
class Daemon {
 public:
  // `ranks` 0: one process without mpirun; `shell` runs first in the same shell (a ulimit).
  Daemon(const std::string& spool, const std::vector<std::string>& extra = {}, int ranks = 2,
         const std::string& shell = "")
      : spool_(spool) {
    fs::remove(fs::path(spool) / "daemon.json");
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      const std::string log = spool + ".log";
      FILE* f = freopen(log.c_str(), "a", stdout);
      (void)f;
      dup2(fileno(stdout), 2);
      std::string cmd = shell + "exec " + (ranks > 0 ? test::mpirun(ranks) : std::string()) + test::neftune_bin() +
                        " serve --spool " + spool +
                        " --listen 127.0.0.1:0 --poll-ms 100";  // exec: this process becomes mpirun
      for (const auto& a : extra) cmd += " " + a;
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    setpgid(pid_, pid_);
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      // daemon.json is written (atomically) once the daemon listens; until then there is none.
      const auto j = nlohmann::json::parse(test::read_file(spool + "/daemon.json"), nullptr, false);
      if (j.is_object() && j.contains("port")) port_ = j["port"].get<int>();
      if (exited()) break;
    }
  }
  ~Daemon() {
    if (!done_) {
      kill_all();  // the ranks too: none may outlive the test and write into its removed directory
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
  void signal(int sig) { kill(pid_, sig); }  // mpirun forwards SIGUSR1 to the ranks
  // SIGKILL to mpirun and every rank, no chance to clean up. The ranks run in process groups of their
  // own: they are found as mpirun's descendants and waited for, so that a restarted daemon never meets a
  // rank of this one still holding the spool's lock.
  void kill_all() {
    const std::vector<pid_t> ranks = descendants(pid_);
    killpg(pid_, SIGKILL);
    for (const pid_t p : ranks) kill(p, SIGKILL);
    for (const pid_t p : ranks) wait_for_exit(p);
  }

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

// The job the daemon lists under `name` once it has reached `state` (an empty object after the timeout).
json wait_for_job(httplib::Client& c, const std::string& name, const std::string& state, int timeout_s = 60) {
  json found = json::object();
  wait_for(
      [&] {
        const json all = get_json(c, "/v1/jobs");
        if (all.is_object()) {
          for (const auto& j : all["jobs"])
            if (j["name"] == name && j["state"] == state) found = j;
        }
        return !found.empty();
      },
      timeout_s);
  return found;
}

// Peak resident memory of a process (VmHWM), in MiB; -1 when it cannot be read.
double peak_rss_mib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

// `neftune serve` under mpirun -np `ranks` (or alone, with 1) that is expected to refuse to start
// (timeout: a hang fails too).
test::CommandResult serve_refused(const std::string& args, int ranks = 2) {
  return test::run_command("timeout 120 " + (ranks > 1 ? test::mpirun(ranks) : std::string()) + test::neftune_bin() +
                           " serve --no-default-job " + args);
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
  for (const auto& l : test::read_jsonl(spool + "/done/" + first + "/output/metrics.jsonl")) {
    if (l.contains("loss")) {
      EXPECT_EQ(l["step"].get<int>(), ++steps);
    }
  }
  EXPECT_EQ(steps, 400);
}

// Two daemons on one spool both handed out id 000001-... (and the second answered a raw 500). The second
// is refused on every rank (exit 2, naming the spool and the holder's pid), the first serves on, and a
// killed holder leaves no stale lock.
TEST(Serve, SecondDaemonOnASpoolIsRefusedOnEveryRank) {
  TempDir d;
  const std::string spool = d / "spool";
  {
    Daemon first(spool, {"--no-default-job"});
    ASSERT_GT(first.port(), 0) << test::read_file(spool + ".log");
    const int pid = test::read_json(spool + "/daemon.json")["pid"];
    const auto second = serve_refused("--spool " + spool + " --listen 127.0.0.1:0");
    EXPECT_EQ(second.exit_code, 2) << second.output;
    EXPECT_THAT(second.output,
                HasSubstr("spool " + spool + " is in use by another daemon (pid " + std::to_string(pid) + " on "));
    EXPECT_THAT(second.output, HasSubstr("(reported by rank 0)"));  // rank 1 stopped with the same error
    EXPECT_EQ(test::read_json(spool + "/daemon.json")["port"].get<int>(), first.port());
    auto c = first.client();
    auto r = c.Post("/v1/jobs?name=only", job(3), "application/yaml");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    EXPECT_EQ(json::parse(r->body)["id"], "000001-only");
    first.kill_all();  // SIGKILL: the lock goes with the process
    first.wait_exit();
  }
  Daemon again(spool, {"--no-default-job", "--exit-when-idle"});
  EXPECT_EQ(again.wait_exit(300), 0) << test::read_file(spool + ".log");
  EXPECT_TRUE(fs::exists(spool + "/done/000001-only"));
}

// `--listen 127.0.0.1:99999` logged that port but bound 34463 (99999 - 65536); a file or an unwritable
// directory as --spool failed with a raw filesystem error. Each is exit 2 on every rank (no MPI abort, no
// hang) naming the option, before anything is bound or written.
TEST(Serve, BadListenOrSpoolExits2OnEveryRank) {
  TempDir d;
  // Every rank parses the same command line: the first case shows the refusal on both ranks, the others
  // (one process each, half the start-up) the parser.
  bool first = true;
  for (const std::string listen :
       {"127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:http", "127.0.0.1:-1", "127.0.0.1:"}) {
    const auto r = serve_refused("--spool " + (d / "spool") + " --listen " + listen, first ? 2 : 1);
    first = false;
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_THAT(r.output, HasSubstr("--listen " + listen + ": the port must be a number from 1 to 65535"));
    EXPECT_THAT(r.output, Not(HasSubstr("MPI_ABORT")));
  }
  EXPECT_FALSE(fs::exists(d / "spool"));

  test::write_file(d / "file", "not a directory\n");
  auto r = serve_refused("--spool " + (d / "file") + " --listen 127.0.0.1:0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--spool " + (d / "file") + ": exists and is not a directory"));
  EXPECT_THAT(r.output, HasSubstr("(reported by rank 0)"));
  EXPECT_EQ(test::read_file(d / "file"), "not a directory\n");

  // Root writes to any mode bits, but not into sysfs.
  std::string read_only = "/sys";
  if (geteuid() != 0) {
    read_only = d / "read-only";
    fs::create_directories(read_only);
    chmod(read_only.c_str(), 0555);
  }
  r = serve_refused("--spool " + read_only + " --listen 127.0.0.1:0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--spool " + read_only + ": the spool directory is not writable"));
  EXPECT_THAT(r.output, HasSubstr("(reported by rank 0)"));

  // A writable spool whose lock record cannot be written (a file size limit of 0 fails the write with
  // EFBIG as a full disk fails it with ENOSPC) is not called unwritable: the message is the failure's.
  // One process: mpirun writes files of its own.
  const std::string full = d / "full";
  fs::create_directories(full);
  r = test::run_command("bash -c \"trap '' XFSZ; ulimit -f 0; exec timeout 120 " + test::neftune_bin() +
                        " serve --no-default-job --spool " + full + " --listen 127.0.0.1:0\"");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--spool " + full + ": cannot write " + full + "/.lock: "));
  EXPECT_THAT(r.output, HasSubstr(": pass a spool directory on a local file system with space left"));
  EXPECT_THAT(r.output, Not(HasSubstr("not writable")));
}

// `job(steps)` with checkpoint.dir set (and resume: never, keep_last: 1, as in the report).
std::string job_with_checkpoint_dir(int steps, const std::string& dir) {
  std::string s = job(steps);
  const std::string from = "checkpoint: {every_steps: 5}";
  s.replace(s.find(from), from.size(), "checkpoint: {every_steps: 5, dir: " + dir + ", resume: never, keep_last: 1}");
  return s;
}

// A job with checkpoint: {dir: <another run>/checkpoints, resume: never, keep_last: 1} deleted that run's
// checkpoints. A job that names checkpoint.dir is refused: 400 naming the key over HTTP (sweeps too),
// failed with the same error from incoming/ or when an older daemon queued it; output_dir is always the
// job's own, whatever the file says.
TEST(Serve, JobsWriteOnlyUnderTheirOwnDirectory) {
  TempDir d;
  const std::string spool = d / "spool", other = d / "other-run";
  test::write_file(other + "/checkpoints/step-00000005/meta.json", "{}\n");
  test::write_file(other + "/metrics.jsonl", "{\"step\": 5}\n");
  const std::string evil = job_with_checkpoint_dir(2, other + "/checkpoints");
  test::write_file(spool + "/queue/000001-old/job.yaml", evil);  // queued before submissions were checked
  Daemon daemon(spool, {"--no-default-job"});
  ASSERT_GT(daemon.port(), 0) << test::read_file(spool + ".log");
  auto c = daemon.client();
  EXPECT_TRUE(wait_for([&] { return state_of(c, "000001-old") == "failed"; }, 120)) << test::read_file(spool + ".log");
  EXPECT_THAT(get_json(c, "/v1/jobs/000001-old").value("error", ""), HasSubstr("checkpoint.dir"));

  const std::string refusal = "checkpoint.dir: a daemon job keeps its checkpoints in its own directory";
  for (const std::string& body : {evil, job_with_checkpoint_dir(2, "checkpoints"),
                                  job(2, "sweep: {checkpoint.dir: [" + other + "/checkpoints, x]}\n")}) {
    auto r = c.Post("/v1/jobs?name=evil", body, "application/yaml");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body;
    EXPECT_THAT(r->body, HasSubstr(refusal));
  }
  test::write_file(spool + "/incoming/evil.yaml", evil);
  EXPECT_THAT(wait_for_job(c, "evil", "failed").value("error", ""), HasSubstr(refusal));

  auto r = c.Post("/v1/jobs?name=outdir", "output_dir: " + other + "\n" + job(2), "application/yaml");
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = json::parse(r->body)["id"];
  EXPECT_TRUE(wait_for([&] { return state_of(c, id) == "done"; })) << test::read_file(spool + ".log");
  EXPECT_TRUE(fs::exists(spool + "/done/" + id + "/output/final/model.safetensors"));
  // The other run is as it was: the same two entries, the same bytes.
  EXPECT_EQ(std::distance(fs::directory_iterator(other), fs::directory_iterator()), 2);
  EXPECT_EQ(std::distance(fs::directory_iterator(other + "/checkpoints"), fs::directory_iterator()), 1);
  EXPECT_EQ(test::read_file(other + "/checkpoints/step-00000005/meta.json"), "{}\n");
  EXPECT_EQ(test::read_file(other + "/metrics.jsonl"), "{\"step\": 5}\n");
}

// `ln -s /etc/shadow SPOOL/incoming/x.yaml` put the first line of /etc/shadow into GET /v1/jobs through
// the "unknown key" error. A symlink, a hard link and a FIFO in incoming/ are refused unread (failed,
// naming the file and why); the link goes, the file it names stays; the FIFO does not block the daemon.
TEST(Serve, IncomingRefusesLinksAndFifosUnread) {
  TempDir d;
  const std::string spool = d / "spool", secret = d / "shadow";
  const std::string secret_text = "root:$6$salt$SECRETHASH:19000:0:99999:7:::\n";
  test::write_file(secret, secret_text);
  Daemon daemon(spool, {"--no-default-job"});
  ASSERT_GT(daemon.port(), 0) << test::read_file(spool + ".log");
  auto c = daemon.client();
  const std::string in = spool + "/incoming/";
  fs::create_directories(in + "dir.yaml");  // not a job file: left alone
  fs::create_hard_link(secret, in + "hard.yaml");
  ASSERT_EQ(mkfifo((in + "fifo.yaml").c_str(), 0644), 0);
  fs::create_symlink(secret, in + "sym.yaml");

  const json sym = wait_for_job(c, "sym", "failed"), hard = wait_for_job(c, "hard", "failed"),
             fifo = wait_for_job(c, "fifo", "failed");
  EXPECT_THAT(sym.value("error", ""), HasSubstr("sym.yaml: a symbolic link, refused: job files must be regular files"));
  EXPECT_THAT(hard.value("error", ""), HasSubstr("hard.yaml: has 2 names (a hard link), refused"));
  EXPECT_THAT(fifo.value("error", ""), HasSubstr("fifo.yaml: a FIFO, refused"));
  // Nothing of the file reached the API or the spool.
  EXPECT_THAT(c.Get("/v1/jobs")->body, Not(HasSubstr("SECRETHASH")));
  for (const json& j : {sym, hard, fifo}) {
    const std::string dir = spool + "/failed/" + j.value("id", "?");
    EXPECT_THAT(test::read_file(dir + "/error.txt"), Not(HasSubstr("SECRETHASH")));
    EXPECT_EQ(test::read_file(dir + "/job.yaml"), "");
  }
  for (const char* gone : {"sym.yaml", "hard.yaml", "fifo.yaml"})
    EXPECT_FALSE(fs::exists(fs::symlink_status(in + gone))) << gone;
  EXPECT_TRUE(fs::is_directory(in + "dir.yaml"));
  EXPECT_EQ(test::read_file(secret), secret_text);
  EXPECT_EQ(fs::hard_link_count(secret), 1u);

  // The daemon is not blocked: a regular file is still read, and its error names the key.
  test::write_file(in + "fine.yaml", "train: {lrr: 1}\n");
  EXPECT_THAT(wait_for_job(c, "fine", "failed").value("error", ""), HasSubstr("unknown key 'train.lrr'"));
}

// A sweep of 100 x 10 x 10 x 10 x 10 x 10 values grew the daemon past 13 GB, and 10 x 10 x 10 queued 1000
// jobs in 0.8 s. Combinations are counted (overflow-safe) before any is made: over --max-sweep-jobs is
// 400 with the count and the limit; more than --max-queued-jobs waiting is 429 with the counts; a file in
// incoming/ fails with the same messages.
TEST(Serve, SweepsAndTheQueueAreCappedBeforeAnythingIsMade) {
  TempDir d;
  const std::string spool = d / "spool";
  Daemon daemon(spool, {"--no-default-job", "--max-sweep-jobs", "12", "--max-queued-jobs", "10"});
  ASSERT_GT(daemon.port(), 0) << test::read_file(spool + ".log");
  auto c = daemon.client();
  const int pid = test::read_json(spool + "/daemon.json")["pid"];
  const double rss_before = peak_rss_mib(pid);

  // 10^6 combinations: expanding them took about 1.3 GB; counting takes nothing.
  auto values = [](int n) {
    std::string v;
    for (int i = 0; i < n; ++i) v += (i ? ", " : "") + std::to_string(i + 1);
    return "[" + v + "]";
  };
  const std::string million = "sweep: {train.seed: " + values(100) + ", train.max_steps: " + values(10) +
                              ", data.builtin_train_size: " + values(10) + ", train.eval_every_steps: " + values(10) +
                              ", logging.log_every_steps: " + values(10) + "}\n";
  auto r = c.Post("/v1/jobs?name=big", job(2, million), "application/yaml");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body,
              HasSubstr("sweep: 100 x 10 x 10 x 10 x 10 values make 1000000 jobs, over the limit of 12 per sweep"));
  // 10^20 overflows int64: still refused, with the count saturated.
  std::string keys;
  for (int k = 0; k < 20; ++k) keys += (k ? ", " : "") + std::string("k") + std::to_string(k) + ": " + values(10);
  r = c.Post("/v1/jobs?name=huge", job(2, "sweep: {" + keys + "}\n"), "application/yaml");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("values make more than 9.2e18 jobs, over the limit of 12"));
  EXPECT_LT(peak_rss_mib(pid) - rss_before, 128) << "rank 0 peak RSS grew from " << rss_before << " MiB";
  const std::string four_by_four =
      "sweep: {train.seed: " + values(4) + ", train.lr: [1.0e-3, 2.0e-3, 3.0e-3, 4.0e-3]}\n";
  r = c.Post("/v1/jobs?name=sixteen", job(2, four_by_four), "application/yaml");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("4 x 4 values make 16 jobs, over the limit of 12 per sweep"));

  // incoming/ is read while no job runs: the same two limits, as failed jobs.
  test::write_file(spool + "/incoming/sixteen.yaml", job(2, four_by_four));
  test::write_file(spool + "/incoming/eleven.yaml", job(2, "sweep: {train.seed: " + values(11) + "}\n"));
  EXPECT_THAT(wait_for_job(c, "sixteen", "failed").value("error", ""),
              HasSubstr("4 x 4 values make 16 jobs, over the limit of 12 per sweep"));
  EXPECT_THAT(
      wait_for_job(c, "eleven", "failed").value("error", ""),
      HasSubstr("eleven.yaml: the queue holds 0 job(s) and this submission adds 11: over the limit of 10 queued jobs"));

  // Over HTTP: one long job runs (not counted), 8 wait, 3 more would make 11 > 10; 2 more fit.
  const std::string running = json::parse(c.Post("/v1/jobs?name=long", job(100000), "application/yaml")->body)["id"];
  ASSERT_TRUE(wait_for([&] { return state_of(c, running) == "running"; }, 60));
  EXPECT_EQ(
      c.Post("/v1/jobs?name=eight", job(2, "sweep: {train.seed: " + values(8) + "}\n"), "application/yaml")->status,
      201);
  r = c.Post("/v1/jobs?name=three", job(2, "sweep: {train.seed: " + values(3) + "}\n"), "application/yaml");
  EXPECT_EQ(r->status, 429) << r->body;
  EXPECT_THAT(
      r->body,
      HasSubstr(
          "POST /v1/jobs: the queue holds 8 job(s) and this submission adds 3: over the limit of 10 queued jobs"));
  EXPECT_EQ(c.Post("/v1/jobs?name=two", job(2, "sweep: {train.seed: " + values(2) + "}\n"), "application/yaml")->status,
            201);
  int queued = 0;
  const json all = get_json(c, "/v1/jobs");
  for (const auto& j : all["jobs"]) queued += j["state"] == "queued";
  EXPECT_EQ(queued, 10) << all.dump(1);
  EXPECT_EQ(state_of(c, running), "running");
}

// A 10 MB job file in incoming/ left 2.6 GB held by the daemon (a 48-59 MB one took ~50 s and 5-6 GB to
// fail). A job file over the 1 MiB limit is refused unread: failed with its size and the limit, and the
// file itself kept as failed/<id>/job.yaml. Bodies over --max-body-bytes are 413 with a JSON error, and a
// --max-body-bytes above the file limit is refused at start.
TEST(Serve, OversizedJobFilesAreRefusedUnread) {
  TempDir d;
  const std::string spool = d / "spool";
  Daemon daemon(spool, {"--no-default-job"});
  ASSERT_GT(daemon.port(), 0) << test::read_file(spool + ".log");
  auto c = daemon.client();
  const int pid = test::read_json(spool + "/daemon.json")["pid"];
  const double rss_before = peak_rss_mib(pid);
  {
    std::ofstream out(spool + "/incoming/.big.yaml.tmp");
    const std::string line = "# " + std::string(1021, 'x') + "\n";  // 1 KiB of comment: valid YAML
    for (int i = 0; i < 10 * 1024; ++i) out << line;
  }
  fs::rename(spool + "/incoming/.big.yaml.tmp", spool + "/incoming/big.yaml");
  const json big = wait_for_job(c, "big", "failed");
  EXPECT_THAT(big.value("error", ""), HasSubstr("big.yaml: job file is 10 MiB, over the limit of 1 MiB"));
  EXPECT_EQ(fs::file_size(spool + "/failed/" + big.value("id", "") + "/job.yaml"), 10u << 20);
  EXPECT_LT(peak_rss_mib(pid) - rss_before, 32) << "rank 0 peak RSS grew from " << rss_before << " MiB";

  auto r = c.Post("/v1/jobs", std::string((1 << 20) + 1, '#'), "application/yaml");  // default limit 1 MiB
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_THAT(json::parse(r->body).value("error", ""), HasSubstr("request body over 1048576 bytes (--max-body-bytes)"));
  // A form (curl --data-binary's default) is read as the YAML it is.
  r = c.Post("/v1/jobs?name=form", job(2), "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;

  const auto refused = serve_refused("--spool " + (d / "s2") + " --listen 127.0.0.1:0 --max-body-bytes 1048577");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("--max-body-bytes"));
}

// The response's status line to raw request bytes ("" when none came back).
std::string raw_status(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) reply.assign(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply.substr(0, reply.find("\r\n"));
}

// Found by a hostile-input probe: a chunked body was buffered whole past --max-body-bytes (200 MiB held,
// then 400); a second daemon bound the same port (SO_REUSEPORT) and took half the requests; bodies with
// invalid UTF-8 were 500; two Content-Length headers were accepted; an empty body queued the defaults.
TEST(Serve, BodiesAreBoundedWhileReadAndThePortIsOurs) {
  TempDir d;
  const std::string spool = d / "spool";
  Daemon daemon(spool, {"--no-default-job", "--max-body-bytes", "65536"}, 1);
  ASSERT_GT(daemon.port(), 0) << test::read_file(spool + ".log");
  auto c = daemon.client();
  const int pid = test::read_json(spool + "/daemon.json")["pid"];

  // Chunked: 40 KB then 40 KB, over the limit at the second chunk.
  auto chunks = [](size_t chunk, size_t count) {
    return [chunk, count, sent = size_t{0}](size_t, httplib::DataSink& sink) mutable {
      if (sent++ < count) {
        const std::string piece(chunk, '#');
        return sink.write(piece.data(), piece.size());
      }
      sink.done();
      return true;
    };
  };
  auto r = c.Post("/v1/jobs", chunks(40000, 2), "application/yaml");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_THAT(json::parse(r->body).value("error", ""), HasSubstr("request body over 65536 bytes (--max-body-bytes)"));
  // 200 x 1 MiB: the daemon stops reading at the limit (the client sees the connection close: a write to
  // it must fail with EPIPE rather than kill this process).
  signal(SIGPIPE, SIG_IGN);
  const double rss_before = peak_rss_mib(pid);
  auto big = daemon.client();
  big.Post("/v1/jobs", chunks(1 << 20, 200), "application/yaml");
  EXPECT_LT(peak_rss_mib(pid) - rss_before, 32) << "the daemon's peak RSS grew from " << rss_before << " MiB";

  for (const std::string& body : {std::string(""), std::string("{}\n"), std::string("# only a comment\n")}) {
    r = c.Post("/v1/jobs", body, "application/yaml");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body;
    EXPECT_THAT(json::parse(r->body).value("error", ""), HasSubstr("the job is empty (no keys)")) << body;
  }
  for (const std::string& body : {std::string("train: {seed: \"\xff\xfe\"}\n"), std::string("\xff\x9c\x01[{\xfe")}) {
    r = c.Post("/v1/jobs", body, "application/yaml");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
  }
  EXPECT_THAT(raw_status(daemon.port(),
                         "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                         "Content-Length: 3\r\n\r\na: "),
              HasSubstr("400"));
  EXPECT_TRUE(get_json(c, "/v1/jobs")["jobs"].empty());

  // A job naming a FIFO stayed running for good (cancel, SIGTERM and the queue behind it stuck): it fails.
  ASSERT_EQ(mkfifo((d / "pipe.json").c_str(), 0600), 0);
  r = c.Post("/v1/jobs?name=fifo", job(2, "tokenizer: {kind: hf, path: " + (d / "pipe.json") + "}\n"),
             "application/yaml");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  r = c.Post("/v1/jobs?name=after", job(2), "application/yaml");
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_THAT(wait_for_job(c, "fifo", "failed").value("error", ""),
              HasSubstr("pipe.json: a FIFO (named pipe), not a regular file"));
  wait_for_job(c, "after", "done");

  const auto second =
      serve_refused("--spool " + (d / "s2") + " --listen 127.0.0.1:" + std::to_string(daemon.port()), 1);
  EXPECT_EQ(second.exit_code, 2) << second.output;
  EXPECT_THAT(second.output, HasSubstr("127.0.0.1:" + std::to_string(daemon.port()) +
                                       " is in use by another neftune daemon (pid " + std::to_string(pid) + ")"));
}

// A full disk (here a file size limit of 64 KiB: a write past it fails with EFBIG as one to a full disk
// fails with ENOSPC) and a job file in incoming/ took the daemon down (exit 1 writing a status file) and
// left queue/.N-*.tmp behind. Now the file waits in incoming/, the reason is logged, the daemon serves.
TEST(Serve, AFullDiskLeavesTheDaemonServingAndTheFileWaiting) {
  TempDir d;
  const std::string spool = d / "spool";
  Daemon daemon(spool, {"--no-default-job"}, 0, "trap '' XFSZ; ulimit -f 128; ");  // sh: 512-byte blocks
  ASSERT_GT(daemon.port(), 0) << test::read_file(spool + ".log");
  // A job whose job.yaml (a long tokenizer.path) is past the limit.
  const std::string big = job(2, "tokenizer: {path: /" + std::string(200000, 'p') + "}\n");
  test::write_file(spool + "/incoming/.big.yaml.tmp", big);
  fs::rename(spool + "/incoming/.big.yaml.tmp", spool + "/incoming/big.yaml");
  wait_for([&] { return test::read_file(spool + ".log").find("stays in incoming/") != std::string::npos; }, 30);
  EXPECT_THAT(test::read_file(spool + ".log"), HasSubstr("big.yaml stays in incoming/: the spool cannot be written ("));
  auto c = daemon.client();
  auto r = c.Get("/healthz");
  ASSERT_TRUE(r) << test::read_file(spool + ".log");
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(daemon.exited());
  EXPECT_TRUE(fs::exists(spool + "/incoming/big.yaml"));
  for (const auto& e : fs::directory_iterator(spool + "/queue")) ADD_FAILURE() << "left behind: " << e.path();
  // Over HTTP the same write is 507 with the reason.
  r = c.Post("/v1/jobs", big, "application/yaml");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 507) << r->body;
  EXPECT_THAT(r->body, HasSubstr("the spool cannot be written"));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// SIGTERM during a job's final eval waited ~75 s for the eval to finish. A stop request now ends an eval
// at once on every rank (here the signal goes to rank 0 alone, as a cancel would: rank 1 learns it from
// the per-batch check): the daemon exits 75 within seconds, the job stays in running/ with the checkpoint
// of its last step, and a restarted daemon redoes only the final eval and the export.
TEST(Serve, SigtermDuringTheFinalEvalStopsItWithinSeconds) {
  TempDir d;
  const std::string spool = d / "spool";
  std::string long_eval = job(4);
  // About ten seconds of eval on two ranks: long enough that waiting for it shows against the stop.
  long_eval.replace(long_eval.find("builtin_eval_size: 8"), 20, "builtin_eval_size: 10000");
  std::string id;
  double stop_s = 0;
  {
    Daemon daemon(spool, {"--no-default-job"});
    ASSERT_GT(daemon.port(), 0) << test::read_file(spool + ".log");
    auto c = daemon.client();
    id = json::parse(c.Post("/v1/jobs?name=long-eval", long_eval, "application/yaml")->body)["id"];
    const std::string latest = spool + "/running/" + id + "/output/checkpoints/latest";
    // The last step's checkpoint is written just before the final eval starts.
    ASSERT_TRUE(wait_for([&] { return fs::exists(latest) && test::read_file(latest) == "step-00000004\n"; }, 120))
        << test::read_file(spool + ".log");
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const auto t0 = std::chrono::steady_clock::now();
    kill(test::read_json(spool + "/daemon.json")["pid"].get<int>(), SIGTERM);
    EXPECT_EQ(daemon.wait_exit(), 75) << test::read_file(spool + ".log");
    stop_s = seconds_since(t0);
  }
  const std::string out = spool + "/running/" + id + "/output";
  EXPECT_EQ(test::read_json(spool + "/running/" + id + "/status.json")["state"], "running");
  EXPECT_FALSE(fs::exists(out + "/final"));
  for (const auto& l : test::read_jsonl(out + "/metrics.jsonl")) EXPECT_FALSE(l.contains("eval_loss"));

  // The restart runs the whole eval: the reference for how long waiting for it would have taken.
  const auto t0 = std::chrono::steady_clock::now();
  {
    Daemon daemon(spool, {"--no-default-job", "--exit-when-idle"});
    EXPECT_EQ(daemon.wait_exit(300), 0) << test::read_file(spool + ".log");
  }
  const double resume_s = seconds_since(t0);
  // Stopping is one eval batch plus the exit (about a second); bounded well below the eval itself.
  EXPECT_LT(stop_s, 15.0);
  EXPECT_LT(stop_s, resume_s / 2) << "stopping took " << stop_s << " s, the restarted job " << resume_s << " s";
  const std::string done = spool + "/done/" + id + "/output";
  EXPECT_TRUE(fs::exists(done + "/final/model.safetensors"));
  int steps = 0, evals = 0;
  for (const auto& l : test::read_jsonl(done + "/metrics.jsonl")) {
    steps += l.contains("loss");
    if (l.contains("eval_loss")) {
      ++evals;
      EXPECT_EQ(l["step"], 4);
    }
  }
  EXPECT_EQ(steps, 4);  // no step was trained again
  EXPECT_EQ(evals, 1);
}

// A path nobody serves is 404 and a known path with another method 405 with an Allow header, both with a
// JSON body (they were empty bodies, and 404 for a wrong method).
TEST(Serve, UnknownRoutesAndMethodsGetJsonAnd405ListsTheAllowedOnes) {
  TempDir d;
  const std::string spool = d / "spool";
  Daemon daemon(spool, {"--no-default-job"});
  ASSERT_GT(daemon.port(), 0) << test::read_file(spool + ".log");
  auto c = daemon.client();
  struct Case {
    httplib::Result result;
    const char* allow;
    const char* error;
  };
  Case cases[] = {
      {c.Put("/v1/jobs", "x", "text/plain"), "GET, HEAD, POST", "PUT is not allowed on /v1/jobs"},
      {c.Post("/v1/jobs/000001-x", "", "text/plain"), "GET, HEAD, DELETE", "POST is not allowed on /v1/jobs/000001-x"},
      {c.Patch("/v1/jobs/000001-x"), "GET, HEAD, DELETE", "PATCH is not allowed"},
      {c.Delete("/metrics"), "GET, HEAD", "DELETE is not allowed on /metrics"},
      {c.Post("/healthz", "", "text/plain"), "GET, HEAD", "POST is not allowed on /healthz"}};
  for (auto& k : cases) {
    ASSERT_TRUE(k.result);
    EXPECT_EQ(k.result->status, 405) << k.error;
    EXPECT_EQ(k.result->get_header_value("Allow"), k.allow);
    EXPECT_THAT(json::parse(k.result->body).value("error", ""), HasSubstr(k.error));
  }
  for (auto* r : {&cases[0], &cases[1]}) EXPECT_EQ(r->result->get_header_value("Content-Type"), "application/json");
  auto nope = c.Get("/v2/jobs");
  EXPECT_EQ(nope->status, 404);
  EXPECT_THAT(json::parse(nope->body).value("error", ""), HasSubstr("no such endpoint: GET /v2/jobs"));
  auto options = c.Options("/v1/jobs");
  EXPECT_EQ(options->status, 204);
  EXPECT_EQ(options->get_header_value("Allow"), "GET, HEAD, POST");
  EXPECT_EQ(c.Get("/healthz")->status, 200);
  EXPECT_EQ(c.Get("/v1/jobs")->status, 200);
}

}  // namespace
}  // namespace neftune
