// The daemon's job store (rank 0 only). The spool directory is the source of truth; every state change
// is a rename, so a daemon killed at any moment loses no queued job and finds its running job again:
//
//   .lock                       held (flock) by the daemon that owns the spool: see spool_lock.h
//   incoming/<name>.yaml        job files dropped by users: write them elsewhere (or as a dot file, or
//                               with a .tmp suffix) and rename into place; only complete *.yaml/*.yml
//                               files whose names do not start with '.' are read, and only regular
//                               files (job_file.h)
//   queue/<id>/job.yaml         accepted, waiting
//   running/<id>/               job.yaml, status.json, output/ (the job's output_dir)
//   done/<id>/, failed/<id>/ (error.txt), cancelled/<id>/
//   reports/<sweep>/            report.md, report.json, loss.svg of a completed sweep
//
// Job ids are generated here (job_names.h), so nothing a user sends can name a path outside the spool;
// what a job may ask for is in admission.h.
// All methods are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "launch/serve/admission.h"
#include "launch/serve/job_status.h"
#include "launch/serve/spool_lock.h"
#include "trainer/run/trainer.h"

namespace neftune::serve {

// What the daemon runs next: the job file's config text and the overrides that make it this job.
struct JobLaunch {
  std::string id;
  std::string config_yaml;
  std::vector<std::string> overrides;  // including output_dir
};

class Spool {
 public:
  // Takes the spool's lock first (UserError if another daemon holds it, or the path is unusable).
  Spool(std::string root, JobLimits limits);
  const std::string& root() const { return root_; }

  // Validates a job file and queues one job per sweep combination; returns their ids. Throws
  // config::ConfigError (with `source` and the key) when invalid, QueueFull when there is no room.
  std::vector<std::string> submit(const std::string& yaml, const std::string& name, const std::string& source);
  // Moves complete files from incoming/ into the queue (invalid ones straight to failed/ with the error).
  // When the spool cannot be written (a full disk) the files stay in incoming/ for the next scan.
  void scan_incoming();
  // An interrupted running job first (after a crash or SIGTERM), then the oldest queued: marked running.
  std::optional<JobLaunch> start_next(int max_attempts);
  void on_step(const std::string& id, const run::StepStats& s, int64_t total_steps);
  void on_eval(const std::string& id, double eval_loss);
  // Moves the job to done/failed/cancelled; returns its sweep id when that completes the sweep.
  std::optional<std::string> finish(const std::string& id, JobState state, const std::string& error = "");
  // Marks the running job interrupted (it stays in running/ to be resumed first).
  void interrupt(const std::string& id);

  enum class Cancel { cancelled, cancelling, not_found, finished };
  Cancel cancel(const std::string& id);
  bool cancel_requested(const std::string& id) const;

  std::vector<JobStatus> list() const;
  std::optional<JobStatus> get(const std::string& id) const;
  bool has_work() const;
  bool ever_had_jobs() const;
  std::string prometheus_metrics() const;
  // Output dirs of a sweep's jobs (in submission order) and where its report goes.
  std::vector<std::string> sweep_outputs(const std::string& sweep) const;
  std::string report_dir(const std::string& sweep) const;

 private:
  void load();  // creates the state directories and reads the jobs in them
  std::string dir_of(const JobStatus& j) const;
  void save_status(const JobStatus& j) const;
  // Renames the job's directory into the state's directory.
  void move_locked(JobStatus& j, JobState to);
  // Into done/failed/cancelled: finished now, error.txt when there is an error, status saved.
  void end_locked(JobStatus& j, JobState to, const std::string& error);
  std::string queue_locked(const std::string& config_yaml, const std::vector<std::string>& overrides,
                           const std::string& name, const std::string& sweep);
  // A failed job for a job file that was refused; `keep` moves the file itself in as its job.yaml.
  void fail_file_locked(const std::string& yaml, const std::string& name, const std::string& error,
                        const std::string& keep = "");
  // One file of scan_incoming(): queued, or failed with the reason; io::WriteError when the spool
  // cannot be written.
  void take_incoming(const std::filesystem::path& f);

  std::string root_;
  SpoolLock lock_;  // before anything reads or writes the spool
  JobLimits limits_;
  mutable std::mutex mu_;
  std::map<std::string, JobStatus> jobs_;  // by id (ids sort in submission order)
  std::set<std::string> cancel_;           // running jobs asked to stop
  int64_t next_seq_ = 1;
  std::string incoming_write_error_;  // the last write failure scan_incoming() logged
};

}  // namespace neftune::serve
