// Peak live tensor bytes of the LM head + cross-entropy, forward and backward, with all target
// positions at once (train.loss_chunk_tokens 0) and in chunks: a Llama 3 vocabulary (128256) over
// 8 x 2048 target tokens. Counted by bench/counting_allocator.h above what is live before the step
// (hidden rows, head weights); includes the head weight's and the rows' gradients.
//
//   build/bin/bench_loss_memory [--dim 512] [--vocab 128256] [--batch 8] [--seq 2048] [--chunks 0,4096,512]
//
// A case whose logits would not fit in --max-gb (default: 80% of MemAvailable) runs on fewer sequences
// of the batch and says so ("target_tokens"); its bytes per target token are what scales.
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/bench_util.h"
#include "bench/counting_allocator.h"
#include "config/train_config.h"
#include "trainer/model/chunked_head.h"

using namespace neftune;

namespace {

double mem_available_gb() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  long long kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return static_cast<double>(kb) / 1e6 * 1.024;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): a failure ends a benchmark with its message
  CLI::App app{"peak tensor memory of the LM head + loss, all positions at once vs in chunks"};
  int64_t dim = 512, vocab = 128256, batch = 8, seq = 2048;
  std::vector<int64_t> chunks{0, 4096, 512};
  double max_gb = 0.8 * mem_available_gb();
  int threads = 0;
  app.add_option("--dim", dim);
  app.add_option("--vocab", vocab);
  app.add_option("--batch", batch);
  app.add_option("--seq", seq, "target tokens per sequence");
  app.add_option("--chunks", chunks, "train.loss_chunk_tokens values; 0 = all positions at once")->delimiter(',');
  app.add_option("--max-gb", max_gb, "largest estimated peak a case may reach");
  app.add_option("--threads", threads, "0 = all cores");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) at::set_num_threads(threads);

  config::ModelInit init;
  init.dim = dim;
  init.n_heads = 1;
  init.n_kv_heads = 1;
  init.tie_embeddings = false;
  const model::LlamaConfig mc = model::LlamaConfig::from_init(init, vocab, 1, 2);
  auto& counter = bench::CountingAllocator::install();
  nlohmann::json cases = nlohmann::json::array();
  for (const int64_t chunk : chunks) {
    // Live at the peak: the chunk's fp32 logits, its log-softmax, their two gradients (4 x rows x V x 4 B).
    const auto estimate_gb = [&](int64_t b) {
      const int64_t rows = chunk > 0 && chunk < b * seq ? chunk : b * seq;
      return 4.0 * static_cast<double>(rows * vocab) * 4 / 1e9;
    };
    int64_t b = batch;
    while (b > 1 && estimate_gb(b) > max_gb) --b;
    const int64_t n = b * seq;
    const at::Tensor x = at::randn({n, dim}).requires_grad_(true);                    // (N, d) final hidden rows
    const at::Tensor norm_w = at::ones({dim}).requires_grad_(true);                   // (d)
    const at::Tensor head_w = (at::randn({vocab, dim}) * 0.02).requires_grad_(true);  // (V, d)
    const at::Tensor rows = at::arange(n, at::kLong), ids = at::randint(0, vocab, {n}, at::kLong);
    const int64_t before = counter.current();
    counter.reset_peak();
    const auto t0 = bench::Clock::now();
    const double loss = model::chunked_head_loss(
                            mc, [&] { return std::make_pair(norm_w, head_w); }, x, rows, ids, chunk, 1.0 / n)
                            .item<double>();
    const double seconds = bench::seconds_since(t0);
    const double peak_mb = static_cast<double>(counter.peak() - before) / 1e6;
    cases.push_back({{"loss_chunk_tokens", chunk},
                     {"target_tokens", n},
                     {"peak_tensor_mb", peak_mb},
                     {"peak_tensor_bytes_per_target_token", peak_mb * 1e6 / static_cast<double>(n)},
                     {"seconds", seconds},
                     {"mean_loss", loss / static_cast<double>(n)}});
    std::cerr << cases.back().dump() << '\n';
  }
  nlohmann::json r = {
      {"dim", dim},       {"vocab", vocab}, {"batch", batch}, {"seq", seq}, {"threads", at::get_num_threads()},
      {"max_gb", max_gb}, {"cases", cases}};
  // Ratios against the first case when it ran on the same tokens.
  for (size_t i = 1; i < cases.size(); ++i) {
    if (cases[0]["target_tokens"] == cases[i]["target_tokens"]) {
      r["peak_ratio_" + std::to_string(cases[i]["loss_chunk_tokens"].get<int64_t>()) + "_vs_" +
        std::to_string(cases[0]["loss_chunk_tokens"].get<int64_t>())] =
          cases[i]["peak_tensor_mb"].get<double>() / cases[0]["peak_tensor_mb"].get<double>();
    }
  }
  std::cout << r.dump(2) << '\n';
  return 0;
}
