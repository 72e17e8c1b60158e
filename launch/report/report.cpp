#include "launch/report/report.h"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/config.h"
#include "trainer/data/builtin_tasks.h"
#include "trainer/infer/model_eval.h"
#include "trainer/io/file_read.h"
#include "trainer/io/file_write.h"
#include "trainer/model/llama.h"

namespace neftune::report {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string fmt(const std::optional<double>& v, int precision = 4) {
  if (!v) return "–";
  std::ostringstream os;
  os.precision(precision);
  os << std::fixed << *v;
  return os.str();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A "nice" tick step (1, 2 or 5 x 10^k) giving about `n` ticks over `range`.
double nice_step(double range, int n) {
  const double raw = range / n, mag = std::pow(10.0, std::floor(std::log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

}  // namespace

RunSummary summarize_run(const std::string& dir, int eval_samples, const at::Device& device) {
  RunSummary r;
  r.dir = dir;
  r.label = fs::path(dir).filename().string();
  if (r.label == "output") r.label = fs::path(dir).parent_path().filename().string();  // daemon job dirs
  const fs::path metrics = fs::path(dir) / "metrics.jsonl";
  std::error_code ec;
  if (!fs::exists(metrics, ec)) {
    r.status = "no metrics.jsonl";
    return r;
  }
  std::istringstream in(io::read_input(metrics.string(), io::Input::data, "metrics file"));
  std::vector<double> tps;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      continue;
    }
    if (j.contains("eval_loss")) {
      r.eval_loss.emplace_back(j.value("step", int64_t{0}), j["eval_loss"].get<double>());
    } else if (j.contains("loss")) {
      r.loss.emplace_back(j.value("step", int64_t{0}), j["loss"].get<double>());
      if (j.contains("tokens_per_s")) tps.push_back(j["tokens_per_s"].get<double>());
    }
  }
  r.steps = r.loss.empty() ? 0 : r.loss.back().first;
  if (!r.loss.empty()) {
    const size_t k = std::min<size_t>(10, r.loss.size());
    double sum = 0;
    for (size_t i = r.loss.size() - k; i < r.loss.size(); ++i) sum += r.loss[i].second;
    r.final_loss = sum / static_cast<double>(k);
  }
  if (!r.eval_loss.empty()) r.final_eval_loss = r.eval_loss.back().second;
  if (!tps.empty()) r.tokens_per_s = median(tps);
  r.status = fs::exists(fs::path(dir) / "final" / "config.json") ? "done" : "incomplete";

  bool builtin = false;
  try {
    const auto cfg = config::load_config((fs::path(dir) / "config.yaml").string());
    builtin = !cfg.data.train;
    r.alpha = cfg.neftune.alpha.value_or(0.0);
    r.config = config::key_values(cfg);
  } catch (const std::exception& e) {
    // A run directory without a readable config.yaml is still reported from its metrics, without its
    // settings and without the eval on built-in data.
    spdlog::debug("[report] {}: config.yaml not read ({})", dir, e.what());
  }
  if (builtin && eval_samples > 0 && r.status == "done") {
    const std::string final_dir = (fs::path(dir) / "final").string();
    const auto m = model::LlamaModel::load(final_dir, at::kFloat, device);
    const auto tok = tok::load_tokenizer_from_model_dir(final_dir);
    run::EvalReport e;
    run::GenerateOptions g;
    g.max_new_tokens = 64;
    run::eval_generation(m, *tok, data::make_builtin_tasks(eval_samples, data::Split::held_out), g, true, true, e);
    r.exact_match = e.exact_match;
    r.mean_response_tokens = e.mean_response_tokens;
  }
  return r;
}

namespace {

void label_runs(std::vector<RunSummary>& runs) {
  // The config keys whose values differ between the runs (besides where they write) become the labels.
  if (runs.size() < 2) return;
  for (const auto& r : runs)
    if (r.config.empty()) return;  // a run without a readable config keeps its directory name
  const auto& first = runs[0].config;
  std::vector<size_t> varying;
  for (size_t k = 0; k < first.size(); ++k) {
    const std::string& key = first[k].first;
    if (key == "output_dir" || key == "checkpoint.dir") continue;
    for (size_t i = 1; i < runs.size(); ++i) {
      if (runs[i].config[k].second != first[k].second) {
        varying.push_back(k);
        break;
      }
    }
  }
  if (varying.empty()) return;
  for (auto& r : runs) {
    std::string label;
    for (const size_t k : varying) label += (label.empty() ? "" : ", ") + r.config[k].first + "=" + r.config[k].second;
    r.label = label;
  }
}

}  // namespace

std::vector<RunSummary> summarize_runs(const std::vector<std::string>& dirs, int eval_samples,
                                       const at::Device& device) {
  std::vector<RunSummary> runs;
  runs.reserve(dirs.size());
  for (const auto& dir : dirs) runs.push_back(summarize_run(dir, eval_samples, device));
  label_runs(runs);
  return runs;
}

std::string report_markdown(const std::vector<RunSummary>& runs) {
  std::ostringstream os;
  os << "| run | status | steps | final train loss | final eval loss | exact match | mean response tokens | tokens/s "
        "|\n"
     << "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& r : runs) {
    os << "| " << r.label << " | " << r.status << " | " << r.steps << " | " << fmt(r.final_loss) << " | "
       << fmt(r.final_eval_loss) << " | " << (r.exact_match ? fmt(*r.exact_match * 100, 1) + "%" : "–") << " | "
       << fmt(r.mean_response_tokens, 2) << " | " << fmt(r.tokens_per_s, 0) << " |\n";
  }
  os << "\nfinal train loss = mean of the last 10 steps; exact match and response length: greedy answers to the "
        "built-in held-out tasks (runs on other data: –).\n";
  return os.str();
}

std::string loss_curves_svg(const std::vector<RunSummary>& runs) {
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                 "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  const double W = 900, H = 520, left = 70, right = 220, top = 40, bottom = 60;
  const double pw = W - left - right, ph = H - top - bottom;
  int64_t max_step = 1;
  double lo = 1e300, hi = -1e300;
  for (const auto& r : runs) {
    for (const auto& [s, v] : r.loss) {
      max_step = std::max(max_step, s);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    for (const auto& [s, v] : r.eval_loss) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (lo > hi) lo = 0, hi = 1;
  const double ystep = nice_step(hi - lo > 0 ? hi - lo : 1, 6);
  lo = std::floor(lo / ystep) * ystep;
  hi = std::ceil(hi / ystep) * ystep;
  if (hi <= lo) hi = lo + ystep;
  const double xstep = nice_step(static_cast<double>(max_step), 8);
  auto X = [&](double s) { return left + pw * s / static_cast<double>(max_step); };
  auto Y = [&](double v) { return top + ph * (1 - (v - lo) / (hi - lo)); };

  std::ostringstream os;
  os.precision(6);
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
     << " " << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
     << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
     << "<text x=\"" << left
     << "\" y=\"24\" font-size=\"15\">Training loss (lines, EMA 0.9) and eval loss (dots)</text>\n";
  for (int i = 0; lo + i * ystep <= hi + 1e-9; ++i) {
    const double v = lo + i * ystep;
    os << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << Y(v) << "\" y2=\"" << Y(v)
       << "\" stroke=\"#e5e5e5\"/>\n<text x=\"" << left - 8 << "\" y=\"" << Y(v) + 4 << "\" text-anchor=\"end\">" << v
       << "</text>\n";
  }
  for (int i = 0; i * xstep <= static_cast<double>(max_step) + 1e-9; ++i) {
    const double s = i * xstep;
    os << "<line x1=\"" << X(s) << "\" x2=\"" << X(s) << "\" y1=\"" << top + ph << "\" y2=\"" << top + ph + 5
       << "\" stroke=\"black\"/>\n<text x=\"" << X(s) << "\" y=\"" << top + ph + 20 << "\" text-anchor=\"middle\">" << s
       << "</text>\n";
  }
  os << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
     << "\" fill=\"none\" stroke=\"black\"/>\n"
     << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 15 << "\" text-anchor=\"middle\">optimizer step</text>\n"
     << "<text transform=\"translate(18," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">loss</text>\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const char* c = colors[i % 8];
    if (!runs[i].loss.empty()) {
      os << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.8\" points=\"";
      double ema = runs[i].loss.front().second;
      for (const auto& [s, v] : runs[i].loss) {
        ema = 0.9 * ema + 0.1 * v;
        os << X(static_cast<double>(s)) << "," << Y(ema) << " ";
      }
      os << "\"/>\n";
    }
    for (const auto& [s, v] : runs[i].eval_loss)
      os << "<circle cx=\"" << X(static_cast<double>(s)) << "\" cy=\"" << Y(v) << "\" r=\"4\" fill=\"" << c << "\"/>\n";
    const double ly = top + 10 + 22 * static_cast<double>(i);
    os << "<line x1=\"" << left + pw + 15 << "\" x2=\"" << left + pw + 40 << "\" y1=\"" << ly << "\" y2=\"" << ly
       << "\" stroke=\"" << c << "\" stroke-width=\"3\"/>\n<text x=\"" << left + pw + 46 << "\" y=\"" << ly + 4 << "\">"
       << xml_escape(runs[i].label) << "</text>\n";
  }
  os << "</svg>\n";
  return os.str();
}

void write_report(const std::vector<RunSummary>& runs, const std::string& out_dir) {
  fs::create_directories(out_dir);
  io::write_file_atomic((fs::path(out_dir) / "report.md").string(),
                        "# neftune report\n\n" + report_markdown(runs) + "\n![loss curves](loss.svg)\n");
  io::write_file_atomic((fs::path(out_dir) / "loss.svg").string(), loss_curves_svg(runs));
  json j = json::array();
  for (const auto& r : runs) {
    auto opt = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
    j.push_back({{"dir", r.dir},
                 {"label", r.label},
                 {"status", r.status},
                 {"steps", r.steps},
                 {"neftune_alpha", r.alpha},
                 {"final_loss", opt(r.final_loss)},
                 {"final_eval_loss", opt(r.final_eval_loss)},
                 {"exact_match", opt(r.exact_match)},
                 {"mean_response_tokens", opt(r.mean_response_tokens)},
                 {"tokens_per_s", opt(r.tokens_per_s)}});
  }
  io::write_file_atomic((fs::path(out_dir) / "report.json").string(), j.dump(2) + "\n");
}

}  // namespace neftune::report
