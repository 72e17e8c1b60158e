#include "launch/serve/daemon.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "config/config.h"
#include "config/errors.h"
#include "launch/report/report.h"
#include "launch/serve/quickstart_job.h"
#include "trainer/io/file_write.h"
#include "trainer/run/device.h"
#include "trainer/run/stop_signal.h"
#include "trainer/run/trainer.h"

namespace neftune::serve {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Rank 0: waits until there is a job to run or a reason to exit, and says which.
json next_command(Spool& spool, const ServeOptions& o) {
  while (true) {
    if (const int sig = run::stop_signal()) {
      spdlog::warn("[serve] signal {}: exiting{}", sig,
                   spool.has_work() ? " (queued/interrupted jobs resume on restart)" : "");
      return {{"cmd", "exit"}, {"code", spool.has_work() ? kExitPreempted : kExitOk}};
    }
    spool.scan_incoming();
    try {
      if (auto launch = spool.start_next(o.max_attempts))
        return {{"cmd", "run"}, {"id", launch->id}, {"yaml", launch->config_yaml}, {"sets", launch->overrides}};
    } catch (const io::WriteError& e) {  // a full disk: the job waits, the daemon keeps serving
      spdlog::error("[serve] cannot start the next job: the spool cannot be written ({}); retrying", e.what());
      std::this_thread::sleep_for(std::chrono::seconds(5));
    }
    if (o.exit_when_idle && !spool.has_work()) return {{"cmd", "exit"}, {"code", kExitOk}};
    std::this_thread::sleep_for(std::chrono::milliseconds(o.poll_ms));
  }
}

void write_sweep_report(const Spool& spool, const std::string& sweep) {
  report::write_report(report::summarize_runs(spool.sweep_outputs(sweep), 100, run::parse_device("auto")),
                       spool.report_dir(sweep));
  spdlog::info("[serve] sweep {} complete: report in {}", sweep, spool.report_dir(sweep));
}

// Every rank: one job. Failures every rank agrees on (bad config or data, a non-finite loss) fail the
// job alone; anything else propagates and takes the daemon down (the job is retried on restart).
void run_job(const json& cmd, dist::World& world, Spool* spool) {
  const std::string id = cmd["id"];
  JobState end = JobState::done;
  std::string error;
  bool interrupted = false;
  try {
    config::TrainConfig cfg;
    dist::agree(*world.host, [&] {
      cfg = config::parse_config(cmd["yaml"].get<std::string>(), "job " + id,
                                 cmd["sets"].get<std::vector<std::string>>());
      check_job_paths(cfg, "job " + id);  // a job queued before this check existed
    });
    at::set_num_threads(dist::intra_op_threads(world, static_cast<int>(cfg.train.threads)));
    spdlog::info("[serve] job {} starting", id);
    run::Trainer trainer(cfg, world);
    if (spool) {
      trainer.set_observer({[&](const run::StepStats& s, int64_t total) { spool->on_step(id, s, total); },
                            [&](int64_t, double eval_loss) { spool->on_eval(id, eval_loss); }});
    }
    interrupted = trainer.train().preempted;
  } catch (const StopRequested& e) {
    spdlog::warn("[serve] job {}: {}", id, e.what());
    interrupted = true;  // as a stop after a step, without a checkpoint: the job runs again from its start
  } catch (const dist::AgreedFailure& e) {
    end = JobState::failed;
    error = e.what();
  }
  if (!spool) return;
  if (interrupted && spool->cancel_requested(id)) {
    // Cancelled, even if a signal arrived as well (then the daemon exits next, with nothing to resume).
    spool->finish(id, JobState::cancelled, "");
  } else if (interrupted) {
    spool->interrupt(id);  // checkpointed; resumed first when the daemon starts again
  } else if (const auto sweep = spool->finish(id, end, error)) {
    write_sweep_report(*spool, *sweep);
  }
}

}  // namespace

int run_daemon(const ServeOptions& o, dist::World& world) {
  auto& host = *world.host;
  std::unique_ptr<Spool> spool;
  std::unique_ptr<HttpApi> http;
  dist::agree(host, [&] {
    if (world.rank != 0) return;
    spool = std::make_unique<Spool>(o.spool, o.limits);
    if (o.default_job && !spool->ever_had_jobs())
      spool->submit(kQuickstartJobYaml, "quickstart", "built-in quick start");
    http = std::make_unique<HttpApi>(*spool, o.http);
    io::write_file_atomic(
        (fs::path(o.spool) / "daemon.json").string(),
        json{{"pid", getpid()}, {"host", o.http.host}, {"port", http->port()}, {"ranks", world.size}}.dump() + "\n");
  });
  spdlog::info("[serve] {} rank(s) serving spool {}", world.size, o.spool);
  while (true) {
    const json cmd = world.rank == 0 ? next_command(*spool, o) : json();
    // The other ranks sleep between checks while rank 0 waits for work.
    const json got = json::parse(host.broadcast_string(world.rank == 0 ? cmd.dump() : "", 0, /*poll_ms=*/50));
    if (got["cmd"] == "exit") return got["code"].get<int>();
    run_job(got, world, spool.get());
  }
}

}  // namespace neftune::serve
