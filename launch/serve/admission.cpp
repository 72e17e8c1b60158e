#include "launch/serve/admission.h"

#include <malloc.h>

#include "config/size_limit.h"

namespace neftune::serve {

config::JobSpec admit_job(const std::string& yaml, const std::string& source, const JobLimits& limits) {
  // main() keeps up to 1 GiB of freed heap for training (run::tune_allocator): what parsing a job took is
  // given back as soon as it is done, accepted or not.
  struct TrimAfter {
    ~TrimAfter() { malloc_trim(0); }
  } trim_after;
  if (yaml.size() > config::kMaxConfigBytes) {
    throw config::ConfigError(source + ": job file is " + config::format_size(yaml.size()) + ", over the limit of " +
                              config::format_size(config::kMaxConfigBytes) + " (a job file is a few KB)");
  }
  config::JobSpec spec = config::parse_job(yaml, source, limits.max_sweep_jobs);
  // parse_job validated every combination; this looks at what each one would write.
  for (const auto& combo : spec.combinations())
    check_job_paths(config::parse_config(spec.config_yaml, source, combo), source);
  return spec;
}

void check_job_paths(const config::TrainConfig& cfg, const std::string& source) {
  // output_dir needs no check: the daemon sets it last, over anything the file or a sweep says.
  if (cfg.checkpoint.dir) {
    throw config::ConfigError(source +
                              ": checkpoint.dir: a daemon job keeps its checkpoints in its own directory "
                              "(<job>/output/checkpoints), so it cannot choose another; remove checkpoint.dir");
  }
}

void check_queue_room(int64_t queued, int64_t adding, const JobLimits& limits, const std::string& source) {
  if (queued + adding > limits.max_queued_jobs) {
    throw QueueFull(source + ": the queue holds " + std::to_string(queued) + " job(s) and this submission adds " +
                    std::to_string(adding) + ": over the limit of " + std::to_string(limits.max_queued_jobs) +
                    " queued jobs (retry when jobs have finished, cancel some, or raise `neftune serve "
                    "--max-queued-jobs`)");
  }
}

}  // namespace neftune::serve
