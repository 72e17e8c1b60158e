#include "trainer/run/metrics.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "trainer/io/file_read.h"
#include "trainer/io/file_write.h"

namespace neftune::run {

MetricsWriter::MetricsWriter(const std::string& path, bool truncate) {
  file_ = std::fopen(path.c_str(), truncate ? "w" : "a");
  if (!file_) throw io::WriteError(path + ": cannot open for writing (" + std::strerror(errno) + ")");
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

void keep_metrics_through(const std::string& path, int64_t last_step) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return;
  std::istringstream in(io::read_input(path, io::Input::data, "metrics file"));
  std::string kept, line;
  int64_t unreadable = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (nlohmann::json::parse(line).value("step", int64_t{0}) <= last_step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      ++unreadable;  // a line cut by a crash: dropped
    }
  }
  if (unreadable > 0) spdlog::info("[metrics] {}: {} unreadable line(s) dropped (cut by a crash)", path, unreadable);
  io::write_file_atomic(path, kept);
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
