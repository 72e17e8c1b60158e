#include "trainer/run/metrics.h"

#include <malloc.h>
#include <sys/resource.h>

#include <stdexcept>

namespace neftune::run {

MetricsWriter::MetricsWriter(const std::string& path, bool truncate) {
  file_ = std::fopen(path.c_str(), truncate ? "w" : "a");
  if (!file_) throw std::runtime_error(path + ": cannot open for writing");
}

MetricsWriter::~MetricsWriter() {
  if (file_) std::fclose(file_);
}

void MetricsWriter::write(const nlohmann::json& line) {
  if (!file_) return;
  const std::string text = line.dump() + "\n";
  std::fwrite(text.data(), 1, text.size(), file_);
  std::fflush(file_);
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KB on Linux
}

}  // namespace neftune::run

namespace neftune::run {

void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace neftune::run
