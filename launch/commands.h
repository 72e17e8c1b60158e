// The `neftune` subcommands. Each registers its options on the CLI11 app and runs when chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

#include "distributed/world.h"

namespace neftune::launch {

// The --device option of the inference commands (generate, eval, report).
inline const char* kDeviceHelp =
    "auto (the first GPU when this build has CUDA and one is visible, else cpu) | cpu | cuda[:N]";

// A subcommand's body; returns the process exit code.
using Action = std::function<int()>;

Action add_train_command(CLI::App& app, dist::World& world);
Action add_generate_command(CLI::App& app, dist::World& world);
Action add_eval_command(CLI::App& app, dist::World& world);
Action add_export_command(CLI::App& app, dist::World& world);
Action add_serve_command(CLI::App& app, dist::World& world);
Action add_report_command(CLI::App& app, dist::World& world);
Action add_tokenize_command(CLI::App& app, dist::World& world);

// Parses argv, runs the chosen subcommand and maps errors to exit codes (README "Exit codes").
int run_cli(int argc, char** argv, dist::World& world);

}  // namespace neftune::launch
