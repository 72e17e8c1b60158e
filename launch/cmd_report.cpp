// neftune report RUN_DIR... [--out DIR] [--eval-samples N]
#include <iostream>

#include "config/errors.h"
#include "launch/commands.h"
#include "launch/report/report.h"
#include "trainer/run/device.h"

namespace neftune::launch {

Action add_report_command(CLI::App& app, dist::World& world) {
  struct Opts {
    std::vector<std::string> runs;
    std::string out = "report";
    int eval_samples = 100;
    std::string device = "auto";
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Compare training runs: a table (final losses, exact match, response length, tokens/s) and loss curves (SVG)");
  cmd->add_option("runs", o->runs, "output directories of runs (metrics.jsonl, config.yaml, final/)")->required();
  cmd->add_option("--out", o->out, "where report.md, report.json and loss.svg go")->capture_default_str();
  cmd->add_option("--eval-samples", o->eval_samples,
                  "built-in held-out tasks answered by each final/ model for exact match (0 = skip)")
      ->capture_default_str();
  cmd->add_option("--device", o->device, kDeviceHelp)->capture_default_str();
  return [o, &world]() {
    if (world.rank != 0) return kExitOk;
    const std::vector<report::RunSummary> runs =
        report::summarize_runs(o->runs, o->eval_samples, run::parse_device(o->device));
    report::write_report(runs, o->out);
    std::cout << report::report_markdown(runs) << "\nwritten: " << o->out << "/report.md, " << o->out
              << "/report.json, " << o->out << "/loss.svg" << '\n';
    return kExitOk;
  };
}

}  // namespace neftune::launch
