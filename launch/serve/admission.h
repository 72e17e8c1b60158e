// What the daemon admits as a job, checked before anything is queued (POST /v1/jobs and incoming/
// alike) and again when a job starts (jobs queued by an older daemon):
//   - a job writes only under its own directory: output_dir is the daemon's to set (<job dir>/output,
//     whatever the file says) and a checkpoint.dir is refused;
//   - a job file is at most config::kMaxConfigBytes;
//   - a sweep makes at most max_sweep_jobs jobs, counted before any is made (HTTP 400 above);
//   - at most max_queued_jobs wait in the queue (HTTP 429 above: QueueFull).
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"
#include "config/job.h"

namespace neftune::serve {

struct JobLimits {
  int64_t max_sweep_jobs = 256;    // jobs one sweep may make
  int64_t max_queued_jobs = 1024;  // jobs waiting in the queue, all submissions together
};

// The queue has no room for a submission (HTTP 429): try again when jobs have finished.
class QueueFull : public UserError {
 public:
  using UserError::UserError;
};

// Parses and validates a job file against the limits and the path rule; ConfigError naming the key (or
// the size, or the sweep's count and the limit) otherwise.
config::JobSpec admit_job(const std::string& yaml, const std::string& source, const JobLimits& limits);

// ConfigError naming the key when the config would write outside its output_dir.
void check_job_paths(const config::TrainConfig& cfg, const std::string& source);

// QueueFull (naming `source`, with the counts and the limit) when `adding` more jobs would overfill the
// queue.
void check_queue_room(int64_t queued, int64_t adding, const JobLimits& limits, const std::string& source);

}  // namespace neftune::serve
