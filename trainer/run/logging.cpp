#include "trainer/run/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <set>

namespace neftune::run {
namespace {

std::shared_ptr<spdlog::sinks::sink> g_console;
std::shared_ptr<spdlog::sinks::sink> g_file;  // the current run's train.log (replaced by the next run)
spdlog::level::level_enum g_console_level = spdlog::level::info;
int g_rank = 0;

std::string pattern(int rank) { return "[%Y-%m-%d %H:%M:%S.%e] [r" + std::to_string(rank) + "] [%^%l%$] %v"; }

}  // namespace

void setup_console_logging(int rank, const std::string& level, bool all_ranks) {
  g_rank = rank;
  g_console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  g_console_level = spdlog::level::from_str(level);
  if (rank != 0 && !all_ranks) g_console_level = std::max(g_console_level, spdlog::level::warn);
  g_console->set_level(g_console_level);
  auto logger = std::make_shared<spdlog::logger>("neftune", g_console);
  logger->set_pattern(pattern(rank));
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

void add_file_logging(const config::LoggingConfig& cfg, int rank, const std::string& output_dir) {
  if (!g_console) setup_console_logging(rank, cfg.level, cfg.all_ranks);
  auto logger = spdlog::default_logger();
  auto& sinks = logger->sinks();
  if (g_file) sinks.erase(std::remove(sinks.begin(), sinks.end(), g_file), sinks.end());
  g_file.reset();
  const bool own_file = rank == 0 || cfg.all_ranks;
  if (own_file) {
    const std::string name = rank == 0 ? "train.log" : "train.rank" + std::to_string(rank) + ".log";
    g_file = std::make_shared<spdlog::sinks::basic_file_sink_mt>((std::filesystem::path(output_dir) / name).string());
    g_file->set_level(spdlog::level::from_str(cfg.level));
    g_file->set_pattern(pattern(rank));
    sinks.push_back(g_file);
  }
  logger->flush_on(spdlog::level::info);
}

void set_console_quiet(bool quiet) {
  if (g_console) g_console->set_level(quiet ? std::max(g_console_level, spdlog::level::warn) : g_console_level);
}

void warn_once(const std::string& key, const std::string& msg) {
  static std::mutex mu;
  static std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mu);
  if (seen.insert(key).second) spdlog::warn("{}", msg);
}

}  // namespace neftune::run
