#include "trainer/run/progress.h"

#include <unistd.h>

#include <cstdio>

#include "distributed/world.h"

namespace neftune::run {

ProgressBar::ProgressBar(config::Progress mode, bool is_rank0, int64_t first_step, int64_t total_steps)
    : first_(first_step), total_(total_steps), start_(std::chrono::steady_clock::now()) {
  // mpirun hands every rank a pseudo-terminal even when its own output goes to a file, so under a
  // launcher `auto` means off (logging.progress: on forces the bar).
  const bool terminal = isatty(STDOUT_FILENO) && !dist::launched_by_mpi_launcher();
  active_ = is_rank0 && (mode == config::Progress::on || (mode == config::Progress::auto_detect && terminal));
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t step, double loss, double tokens_per_s) {
  if (!active_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t done = step - first_;
  const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(total_ - step) : 0.0;
  const int width = 30;
  const int filled = total_ > 0 ? static_cast<int>(width * step / total_) : width;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  std::printf("\r[%s] %lld/%lld loss %.4f  %.0f tok/s  ETA %dm%02ds ", bar.c_str(), static_cast<long long>(step),
              static_cast<long long>(total_), loss, tokens_per_s, static_cast<int>(eta) / 60,
              static_cast<int>(eta) % 60);
  std::fflush(stdout);
}

void ProgressBar::finish() {
  if (!active_) return;
  std::printf("\n");
  std::fflush(stdout);
  active_ = false;
}

}  // namespace neftune::run
