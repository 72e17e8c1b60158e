// Rank-aware logging through spdlog: the rank is in every line, info comes from rank 0 only unless
// logging.all_ranks, warnings and errors from every rank. Lines go to the console and, once an
// output_dir exists, to output_dir/train.log. Subsystems tag their lines: "[data] ...".
#pragma once

#include <spdlog/spdlog.h>

#include <string>

#include "config/train_config.h"

namespace neftune::run {

// Console logging only (before the output_dir is known).
void setup_console_logging(int rank, const std::string& level = "info", bool all_ranks = false);
// Adds output_dir/train.log (every rank writes its own lines; rank 0 to train.log, rank r > 0 to
// train.rank<r>.log when logging.all_ranks).
void add_file_logging(const config::LoggingConfig& cfg, int rank, const std::string& output_dir);
// Quiets the console to warnings (while a progress bar owns the terminal) or restores it.
void set_console_quiet(bool quiet);
// Logs `msg` as a warning the first time `key` is seen.
void warn_once(const std::string& key, const std::string& msg);

}  // namespace neftune::run
