// A comparison report over training runs (output directories): a table of final train/eval loss,
// exact-match accuracy and mean response length (built-in tasks), tokens/s; and the loss curves as an
// SVG picture. Used by `neftune report RUN_DIR...` and by the daemon when a sweep completes.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace neftune::report {

struct RunSummary {
  std::string dir;
  std::string label;   // what distinguishes it from the other runs ("neftune.alpha=5"), else its name
  std::string status;  // "done", or why not ("failed: ...", "no metrics")
  std::vector<std::pair<int64_t, double>> loss, eval_loss;  // (step, value)
  std::optional<double> final_loss;                         // mean of the last 10 steps' loss
  std::optional<double> final_eval_loss;                    // the last eval line
  std::optional<double> tokens_per_s;                       // median over steps
  std::optional<double> exact_match;                        // built-in held-out tasks, greedy
  std::optional<double> mean_response_tokens;
  int64_t steps = 0;
  double alpha = 0;
  std::vector<std::pair<std::string, std::string>> config;  // every config key and value; empty if unreadable
};

// Reads <dir>/metrics.jsonl and config.yaml; for runs on the built-in tasks with a final/ model, also
// generates answers for `eval_samples` held-out tasks (0 = skip) for exact match and response length.
RunSummary summarize_run(const std::string& dir, int eval_samples, const at::Device& device);

// summarize_run for each directory, then each run labelled by the config keys whose values differ
// between the runs.
std::vector<RunSummary> summarize_runs(const std::vector<std::string>& dirs, int eval_samples,
                                       const at::Device& device);

std::string report_markdown(const std::vector<RunSummary>& runs);
std::string loss_curves_svg(const std::vector<RunSummary>& runs);

// Writes report.md, report.json and loss.svg into out_dir (created).
void write_report(const std::vector<RunSummary>& runs, const std::string& out_dir);

}  // namespace neftune::report
