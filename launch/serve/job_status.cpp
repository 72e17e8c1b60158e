#include "launch/serve/job_status.h"

#include <iterator>

namespace neftune::serve {
namespace {

using json = nlohmann::json;

// Each state's name (API, status.json, metrics) and the spool directory that holds its jobs, in
// JobState order.
struct StateInfo {
  JobState state;
  const char* name;
  const char* dir;
};
constexpr StateInfo kStates[] = {{JobState::queued, "queued", "queue"},
                                 {JobState::running, "running", "running"},
                                 {JobState::done, "done", "done"},
                                 {JobState::failed, "failed", "failed"},
                                 {JobState::cancelled, "cancelled", "cancelled"}};

constexpr bool in_enum_order() {
  for (size_t i = 0; i < std::size(kStates); ++i)
    if (static_cast<size_t>(kStates[i].state) != i) return false;
  return true;
}
static_assert(in_enum_order(), "kStates is indexed by JobState");

const StateInfo& info(JobState s) { return kStates[static_cast<size_t>(s)]; }

}  // namespace

const char* to_string(JobState s) { return info(s).name; }
const char* state_dir(JobState s) { return info(s).dir; }

json JobStatus::to_json() const {
  json j = {{"id", id},
            {"name", name},
            {"state", to_string(state)},
            {"seq", seq},
            {"overrides", overrides},
            {"submitted_at", submitted_at},
            {"started_at", started_at},
            {"first_step_at", first_step_at},
            {"finished_at", finished_at},
            {"attempts", attempts},
            {"step", step},
            {"total_steps", total_steps},
            {"loss", loss},
            {"tokens_per_s", tokens_per_s},
            {"eta_s", eta_s}};
  if (has_eval) j["eval_loss"] = eval_loss;
  if (!sweep.empty()) j["sweep"] = sweep;
  if (!error.empty()) j["error"] = error;
  return j;
}

JobStatus JobStatus::from_json(const json& j) {
  JobStatus s;
  s.id = j.value("id", "");
  s.name = j.value("name", "");
  s.sweep = j.value("sweep", "");
  s.seq = j.value("seq", int64_t{0});
  s.overrides = j.value("overrides", std::vector<std::string>{});
  s.submitted_at = j.value("submitted_at", 0.0);
  s.started_at = j.value("started_at", 0.0);
  s.first_step_at = j.value("first_step_at", 0.0);
  s.finished_at = j.value("finished_at", 0.0);
  s.attempts = j.value("attempts", 0);
  s.step = j.value("step", int64_t{0});
  s.total_steps = j.value("total_steps", int64_t{0});
  s.loss = j.value("loss", 0.0);
  s.tokens_per_s = j.value("tokens_per_s", 0.0);
  s.error = j.value("error", "");
  if (j.contains("eval_loss")) {
    s.has_eval = true;
    s.eval_loss = j["eval_loss"].get<double>();
  }
  return s;
}

}  // namespace neftune::serve
