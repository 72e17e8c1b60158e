#include "launch/serve/spool.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/job.h"
#include "launch/serve/job_file.h"
#include "launch/serve/job_names.h"
#include "launch/serve/prometheus.h"
#include "trainer/io/file_read.h"
#include "trainer/io/file_write.h"
#include "trainer/run/stop_signal.h"

namespace neftune::serve {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

// A spool file that cannot be read as one (missing, or not a regular file) reads as empty.
std::string read_text(const fs::path& p) {
  try {
    return io::read_input(p.string(), io::Input::json, "spool file");
  } catch (const io::InputError&) {
    return "";
  }
}

}  // namespace

Spool::Spool(std::string root, JobLimits limits) : root_(std::move(root)), lock_(root_), limits_(limits) {
  try {
    load();
  } catch (const fs::filesystem_error& e) {  // a subdirectory this user cannot create or read
    throw UserError("--spool " + root_ + ": " + e.what() +
                    " (its subdirectories must be directories this user can read and write)");
  }
}

void Spool::load() {
  for (const char* d : {"incoming", "reports"}) fs::create_directories(fs::path(root_) / d);
  for (const JobState state : kAllStates) {
    fs::create_directories(fs::path(root_) / state_dir(state));
    for (const auto& e : fs::directory_iterator(fs::path(root_) / state_dir(state))) {
      const std::string id = e.path().filename().string();
      if (!e.is_directory() || id.front() == '.') continue;
      JobStatus s;
      try {
        s = JobStatus::from_json(json::parse(read_text(e.path() / "status.json")));
      } catch (const std::exception&) {
        s.id = id;  // a job moved but its status not yet rewritten: the directory says where it is
        s.name = id.substr(id.find('-') + 1);
        s.seq = std::strtoll(id.c_str(), nullptr, 10);  // the id's leading digits (0 where it has none)
      }
      s.id = id;
      s.state = state;
      next_seq_ = std::max(next_seq_, s.seq + 1);
      jobs_[id] = s;
    }
  }
}

std::string Spool::dir_of(const JobStatus& j) const { return (fs::path(root_) / state_dir(j.state) / j.id).string(); }

void Spool::save_status(const JobStatus& j) const {
  io::write_file_atomic((fs::path(dir_of(j)) / "status.json").string(), j.to_json().dump(2));
}

void Spool::move_locked(JobStatus& j, JobState to) {
  const std::string from = dir_of(j);
  j.state = to;
  fs::rename(from, dir_of(j));
}

void Spool::end_locked(JobStatus& j, JobState to, const std::string& error) {
  move_locked(j, to);
  j.error = error;
  j.finished_at = now_s();
  j.eta_s = 0;
  if (!error.empty()) io::write_file_atomic((fs::path(dir_of(j)) / "error.txt").string(), error + "\n");
  save_status(j);
}

std::string Spool::queue_locked(const std::string& config_yaml, const std::vector<std::string>& overrides,
                                const std::string& name, const std::string& sweep) {
  JobStatus j;
  j.seq = next_seq_++;
  j.name = sanitize_name(name);
  j.id = job_id(j.seq, j.name);
  j.sweep = sweep;
  j.overrides = overrides;
  j.submitted_at = now_s();
  j.state = JobState::queued;
  // Built in a hidden directory, then renamed: a queued job is always complete.
  const fs::path tmp = fs::path(root_) / "queue" / ("." + j.id + ".tmp");
  try {
    fs::create_directories(tmp);
    io::write_file_atomic((tmp / "job.yaml").string(), config_yaml);
    io::write_file_atomic((tmp / "status.json").string(), j.to_json().dump(2));
    fs::rename(tmp, dir_of(j));
  } catch (...) {  // a full disk: nothing half-made stays behind
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  jobs_[j.id] = j;
  return j.id;
}

std::vector<std::string> Spool::submit(const std::string& yaml, const std::string& name, const std::string& source) {
  const config::JobSpec spec = admit_job(yaml, source, limits_);  // throws ConfigError
  std::lock_guard<std::mutex> lock(mu_);
  int64_t queued = 0;
  for (const auto& [id, j] : jobs_) queued += j.state == JobState::queued;
  check_queue_room(queued, spec.combination_count(), limits_, source);
  const std::string base = sanitize_name(!spec.name.empty() ? spec.name : name);
  std::vector<std::string> ids;
  std::string sweep;
  if (!spec.sweep.empty()) sweep = sweep_id(next_seq_, base);
  for (const auto& combo : spec.combinations())
    ids.push_back(queue_locked(spec.config_yaml, combo, combination_name(base, combo), sweep));
  if (!sweep.empty()) {
    fs::create_directories(report_dir(sweep));
    io::write_file_atomic((fs::path(report_dir(sweep)) / "sweep.json").string(),
                          json{{"sweep", sweep}, {"jobs", ids}}.dump(2));
  }
  spdlog::info("[serve] queued {} job(s) from {}: {}", ids.size(), source, ids.front());
  return ids;
}

void Spool::fail_file_locked(const std::string& yaml, const std::string& name, const std::string& error,
                             const std::string& keep) {
  JobStatus& j = jobs_[queue_locked(yaml, {}, name, "")];
  end_locked(j, JobState::failed, error);
  std::error_code ec;  // (a file that vanished meanwhile is simply not kept)
  if (!keep.empty()) fs::rename(keep, fs::path(dir_of(j)) / "job.yaml", ec);
}

void Spool::scan_incoming() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(root_) / "incoming")) {
    const std::string n = e.path().filename().string();
    const std::string ext = e.path().extension().string();
    // Everything but real directories: a symlink, FIFO or device is refused below, not ignored.
    std::error_code ec;
    const bool dir = fs::is_directory(e.symlink_status(ec));
    if (!dir && n.front() != '.' && (ext == ".yaml" || ext == ".yml")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  // A write the spool's disk refuses (full, read-only) fails neither the job nor the daemon: the file stays
  // in incoming/ and is taken once there is room; the reason is logged once, not at every scan.
  for (const auto& f : files) {
    try {
      take_incoming(f);
    } catch (const io::WriteError& e) {
      if (e.what() != incoming_write_error_)
        spdlog::error("[serve] {} stays in incoming/: the spool cannot be written ({})", f.string(), e.what());
      incoming_write_error_ = e.what();
      return;
    }
  }
  incoming_write_error_.clear();
}

void Spool::take_incoming(const fs::path& f) {
  const JobFile file = read_job_file(f.string());
  std::string error = file.error;
  if (error.empty()) {
    try {
      submit(file.text, f.stem().string(), f.string());
    } catch (const io::WriteError&) {
      throw;  // the spool's fault, not the file's
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (!error.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    spdlog::warn("[serve] rejected {}: {}", f.string(), error);
    fail_file_locked(file.text, f.stem().string(), error, file.keep ? f.string() : "");
  }
  std::error_code ec;
  fs::remove(f, ec);  // a kept file is already in failed/; a link goes, never what it points to
}

std::optional<JobLaunch> Spool::start_next(int max_attempts) {
  std::lock_guard<std::mutex> lock(mu_);
  // No job runs now, so a pending cancel request is stale (its job ended first). Under the lock that
  // cancel() also holds, so a request is always for the job that was running when it was made.
  run::clear_stop_request();
  JobStatus* next = nullptr;
  for (auto& [id, j] : jobs_) {  // interrupted jobs first (ids sort in submission order)
    if (j.state == JobState::running) {
      next = &j;
      break;
    }
  }
  if (!next) {
    for (auto& [id, j] : jobs_) {
      if (j.state == JobState::queued) {
        next = &j;
        break;
      }
    }
  }
  if (!next) return std::nullopt;
  JobStatus& j = *next;
  if (j.state == JobState::running && j.attempts >= max_attempts) {
    end_locked(j, JobState::failed, "the daemon died " + std::to_string(j.attempts) + " times while running this job");
    return std::nullopt;
  }
  if (j.state == JobState::queued) move_locked(j, JobState::running);
  // An interrupted job cancelled before it restarted: stop it after its first step, then it is cancelled.
  if (cancel_.count(j.id)) run::request_stop();
  j.attempts += 1;
  j.started_at = now_s();
  j.first_step_at = 0;
  save_status(j);
  JobLaunch launch{j.id, read_text(fs::path(dir_of(j)) / "job.yaml"), j.overrides};
  launch.overrides.push_back("output_dir=" + (fs::path(dir_of(j)) / "output").string());
  return launch;
}

void Spool::on_step(const std::string& id, const run::StepStats& s, int64_t total_steps) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  JobStatus& j = it->second;
  if (j.first_step_at == 0) j.first_step_at = now_s();
  j.step = s.step;
  j.total_steps = total_steps;
  j.loss = s.loss;
  j.tokens_per_s = static_cast<double>(s.tokens) / s.seconds;
  j.eta_s = j.eta_s == 0 ? s.seconds * static_cast<double>(total_steps - s.step)
                         : 0.9 * j.eta_s + 0.1 * s.seconds * static_cast<double>(total_steps - s.step);
}

void Spool::on_eval(const std::string& id, double eval_loss) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  it->second.eval_loss = eval_loss;
  it->second.has_eval = true;
}

std::optional<std::string> Spool::finish(const std::string& id, JobState state, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  JobStatus& j = jobs_.at(id);
  end_locked(j, state, error);
  cancel_.erase(id);
  spdlog::info("[serve] job {} {}{}", id, to_string(state), error.empty() ? "" : ": " + error);
  if (j.sweep.empty()) return std::nullopt;
  for (const auto& [other_id, other] : jobs_) {
    if (other.sweep == j.sweep && (other.state == JobState::queued || other.state == JobState::running))
      return std::nullopt;
  }
  return j.sweep;
}

void Spool::interrupt(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  JobStatus& j = jobs_.at(id);
  j.eta_s = 0;
  save_status(j);
}

Spool::Cancel Spool::cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Cancel::not_found;
  JobStatus& j = it->second;
  if (j.state == JobState::queued) {
    end_locked(j, JobState::cancelled, "");
    return Cancel::cancelled;
  }
  if (j.state == JobState::running) {
    cancel_.insert(id);
    run::request_stop();  // every rank stops after this step, the job checkpoints
    return Cancel::cancelling;
  }
  return Cancel::finished;
}

bool Spool::cancel_requested(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancel_.count(id) > 0;
}

std::vector<JobStatus> Spool::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<JobStatus> out;
  out.reserve(jobs_.size());
  for (const auto& [id, j] : jobs_) out.push_back(j);
  return out;
}

std::optional<JobStatus> Spool::get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second;
}

bool Spool::has_work() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, j] : jobs_)
    if (j.state == JobState::queued || j.state == JobState::running) return true;
  return false;
}

bool Spool::ever_had_jobs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !jobs_.empty();
}

std::string Spool::prometheus_metrics() const { return prometheus_text(list()); }

std::vector<std::string> Spool::sweep_outputs(const std::string& sweep) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, j] : jobs_)
    if (j.sweep == sweep) out.push_back((fs::path(dir_of(j)) / "output").string());
  return out;
}

std::string Spool::report_dir(const std::string& sweep) const { return (fs::path(root_) / "reports" / sweep).string(); }

}  // namespace neftune::serve
