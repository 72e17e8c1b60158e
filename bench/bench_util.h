// Helpers shared by the benchmark programs: timing, medians, the model-size options with the config
// overrides they turn into, and full-length training records.
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace neftune::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A random-init LLaMA's size (multi-head attention: as many KV heads as heads).
struct ModelDims {
  int64_t dim, layers, heads, hidden;

  void add_options(CLI::App& app) {
    app.add_option("--dim", dim);
    app.add_option("--layers", layers);
    app.add_option("--heads", heads);
    app.add_option("--hidden", hidden);
  }
  // `--set`-style overrides of model.init.*
  std::vector<std::string> overrides() const {
    return {"model.init.dim=" + std::to_string(dim), "model.init.n_layers=" + std::to_string(layers),
            "model.init.n_heads=" + std::to_string(heads), "model.init.n_kv_heads=" + std::to_string(heads),
            "model.init.hidden_dim=" + std::to_string(hidden)};
  }
};

// `overrides` followed by `more`.
inline std::vector<std::string> concat(std::vector<std::string> overrides, const std::vector<std::string>& more) {
  overrides.insert(overrides.end(), more.begin(), more.end());
  return overrides;
}

// `n` Alpaca records (JSONL) whose responses fill the whole sequence: truncation keeps BOS + the template
// tail, then cuts the response, so every sample is `seq` tokens and nearly all of them carry loss.
inline void write_full_length_records(const std::string& path, int64_t seq, int n) {
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    out << nlohmann::json{{"instruction", "Repeat."}, {"input", ""}, {"output", std::string(2 * seq, 'a' + i % 26)}}
               .dump()
        << "\n";
  }
}

}  // namespace neftune::bench
