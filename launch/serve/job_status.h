// A daemon job's state and its status record (status.json, the HTTP API), and the spool directory
// each state's jobs live in.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace neftune::serve {

enum class JobState { queued, running, done, failed, cancelled };
inline constexpr JobState kAllStates[] = {JobState::queued, JobState::running, JobState::done, JobState::failed,
                                          JobState::cancelled};
// The state's name in the API, status.json and metrics ("queued", ...).
const char* to_string(JobState s);
// The spool subdirectory that holds jobs in this state ("queue", "running", ...).
const char* state_dir(JobState s);

struct JobStatus {
  std::string id, name, sweep;
  int64_t seq = 0;
  JobState state = JobState::queued;
  std::vector<std::string> overrides;  // --set style, from the sweep combination
  double submitted_at = 0, started_at = 0, first_step_at = 0, finished_at = 0;  // unix seconds
  int attempts = 0;
  int64_t step = 0, total_steps = 0;
  double loss = 0, eval_loss = 0, tokens_per_s = 0, eta_s = 0;
  bool has_eval = false;
  std::string error;
  nlohmann::json to_json() const;
  static JobStatus from_json(const nlohmann::json& j);
};

}  // namespace neftune::serve
