#include "launch/serve/prometheus.h"

#include <map>
#include <sstream>

namespace neftune::serve {

std::string prometheus_text(const std::vector<JobStatus>& jobs) {
  std::map<std::string, int> by_state;
  for (const JobState s : kAllStates) by_state[to_string(s)] = 0;
  for (const auto& j : jobs) by_state[to_string(j.state)]++;
  std::ostringstream os;
  os << "# HELP neftune_jobs Jobs known to the daemon, by state.\n# TYPE neftune_jobs gauge\n";
  for (const auto& [state, n] : by_state) os << "neftune_jobs{state=\"" << state << "\"} " << n << "\n";
  os << "# HELP neftune_queue_length Jobs waiting to run.\n# TYPE neftune_queue_length gauge\n"
     << "neftune_queue_length " << by_state["queued"] << "\n";
  struct Series {
    const char* name;
    const char* help;
    double (*value)(const JobStatus&);
  };
  const Series series[] = {
      {"neftune_job_step", "Optimizer steps completed by the running job.",
       [](const JobStatus& j) { return static_cast<double>(j.step); }},
      {"neftune_job_total_steps", "Optimizer steps the running job will take.",
       [](const JobStatus& j) { return static_cast<double>(j.total_steps); }},
      {"neftune_job_loss", "Training loss of the running job's last step.", [](const JobStatus& j) { return j.loss; }},
      {"neftune_job_tokens_per_second", "Tokens per second of the running job's last step.",
       [](const JobStatus& j) { return j.tokens_per_s; }},
      {"neftune_job_eta_seconds", "Estimated seconds until the running job finishes.",
       [](const JobStatus& j) { return j.eta_s; }}};
  for (const auto& m : series) {
    os << "# HELP " << m.name << " " << m.help << "\n# TYPE " << m.name << " gauge\n";
    for (const auto& j : jobs)
      if (j.state == JobState::running) os << m.name << "{job=\"" << j.id << "\"} " << m.value(j) << "\n";
  }
  return os.str();
}

}  // namespace neftune::serve
