// `neftune serve`: one MPI world that runs queued jobs one after another on all ranks. Rank 0 owns the
// spool and the HTTP API and decides what runs; the other ranks wait (sleeping, not spinning) for its
// command. A job that fails validation, setup or with a non-finite loss fails alone; SIGTERM/SIGUSR1
// make the running job checkpoint (or stop its eval: the checkpoint is already written) and the daemon
// exit, and a restart resumes that job first.
#pragma once

#include <optional>
#include <string>

#include "distributed/world.h"
#include "launch/serve/http_api.h"

namespace neftune::serve {

struct ServeOptions {
  std::string spool;
  HttpOptions http;
  bool exit_when_idle = false;  // stop once nothing is queued or running
  bool default_job = true;      // a brand-new spool gets the quick-start job
  int poll_ms = 300;            // how often rank 0 looks at incoming/
  int max_attempts = 3;         // a job that crashed the daemon this often is failed
  JobLimits limits;             // sweep size and queue length
};

// Runs on every rank; returns the exit code (kExitPreempted when stopped by a signal with work left).
int run_daemon(const ServeOptions& options, dist::World& world);

}  // namespace neftune::serve
