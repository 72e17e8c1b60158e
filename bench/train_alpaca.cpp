// Both contenders train on the same batches: the Trainer draws them with its EpochSampler, and the
// plain loop draws the same picks from a sampler with the same seed over the Trainer's own tokenized
// examples (so tokenization, templating and truncation are identical). Steps are interleaved
// (neftune, plain, neftune, plain, ...) and per-step figures reduced by medians.
//
// The plain loop is what a LibTorch user writes: pad to the longest sample of the batch, logits for
// every position (B, L, V), cross_entropy with ignore_index -100 on the shifted labels, torch::nn
// modules, torch::optim::AdamW, clip_grad_norm_.
#include "bench/train_alpaca.h"

#include <unistd.h>  // getpid

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench/plain_llama.h"
#include "config/config.h"
#include "trainer/data/batch.h"
#include "trainer/data/sampler.h"
#include "trainer/run/trainer.h"

namespace fs = std::filesystem;

namespace neftune::bench {

int run_alpaca_bench(const AlpacaBenchOptions& o, dist::World& world) {
  const fs::path data = fs::path(o.shared_dir) / "fixtures/instructions/alpaca_data_200.json";
  const fs::path tokenizer = fs::path(o.shared_dir) / "fixtures/llama2-tokenizer/tokenizer.model";
  for (const fs::path& p : {data, tokenizer})
    if (!fs::exists(p)) {
      std::cerr << "bench_train --data alpaca: " << p.string() << " not found (set --shared)\n";
      return 2;
    }
  const fs::path dir = fs::temp_directory_path() / ("neftune-bench-alpaca-" + std::to_string(getpid()));
  const int64_t seed = 42;
  const config::TrainConfig cfg = config::parse_config(
      "", "bench",
      concat(o.dims.overrides(),
             {"output_dir=" + dir.string(), "tokenizer.kind=sentencepiece", "tokenizer.path=" + tokenizer.string(),
              "data.train=" + data.string(), "data.format=alpaca", "data.max_seq_len=" + std::to_string(o.max_seq_len),
              "model.init.max_seq_len=" + std::to_string(o.max_seq_len), "model.dtype=" + o.dtype,
              "distributed.param_dtype=" + o.dtype, "train.micro_batch_size=" + std::to_string(o.batch),
              "train.seed=" + std::to_string(seed), "train.max_steps=1000", "train.lr=1e-4", "neftune.alpha=5",
              "logging.level=warn", "logging.progress=off"}));
  run::Trainer ours(cfg, world);
  const std::vector<data::Example>& examples = ours.datasets().train;
  const auto& mc = ours.model().config();

  const at::ScalarType st = o.dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  PlainConfig pc;
  pc.vocab = mc.vocab_size;
  pc.dim = mc.hidden_size;
  pc.layers = mc.num_hidden_layers;
  pc.heads = mc.num_attention_heads;
  pc.kv_heads = mc.num_key_value_heads;
  pc.hidden = mc.intermediate_size;
  pc.max_len = o.max_seq_len;
  PlainLlama plain(pc);
  plain->to(st);
  torch::optim::AdamW opt(plain->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.0));
  data::EpochSampler sampler(static_cast<int64_t>(examples.size()), static_cast<uint64_t>(seed));
  // The pad id only fills positions no real token attends to and no loss reads (right padding).
  auto plain_step = [&](const data::Batch& b) {
    const auto t0 = Clock::now();
    opt.zero_grad();
    const at::Tensor logits = plain->forward(b.input_ids).to(at::kFloat);  // (B, L, V)
    const at::Tensor loss =
        torch::nn::functional::cross_entropy(logits.reshape({-1, pc.vocab}), b.targets.reshape({-1}),
                                             torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(plain->parameters(), 1.0);
    opt.step();
    return seconds_since(t0);
  };
  auto next_batch = [&] { return data::collate(examples, sampler.next(o.batch), 0); };

  for (int i = 0; i < 2; ++i) {  // warm-up (allocator, oneDNN kernels); both consume the same batches
    ours.train_step();
    plain_step(next_batch());
  }
  std::vector<double> tps_ours, tps_plain, ratio;
  nlohmann::json per_step = nlohmann::json::array();
  double sum_ours = 0, sum_plain = 0;
  int64_t real = 0, padded = 0, targets = 0;
  for (int i = 0; i < o.steps; ++i) {
    const auto t0 = Clock::now();
    const run::StepStats s = ours.train_step();
    const double t_ours = seconds_since(t0);
    const data::Batch b = next_batch();
    if (b.n_tokens != s.tokens || b.n_targets != s.targets) {
      std::cerr << "bench_train --data alpaca: the plain loop's batch differs from the Trainer's\n";
      return 1;
    }
    const double t_plain = plain_step(b);
    tps_ours.push_back(static_cast<double>(s.tokens) / t_ours);
    tps_plain.push_back(static_cast<double>(b.n_tokens) / t_plain);
    ratio.push_back(t_plain / t_ours);
    sum_ours += t_ours;
    sum_plain += t_plain;
    per_step.push_back({{"real_tokens", b.n_tokens},
                        {"padded_tokens", b.input_ids.numel()},
                        {"s_neftune", t_ours},
                        {"s_plain", t_plain}});
    real += b.n_tokens;
    targets += b.n_targets;
    padded += b.input_ids.numel();
  }
  const nlohmann::json r = {{"data", "alpaca"},
                            {"dtype", o.dtype},
                            {"threads", at::get_num_threads()},
                            {"params", mc.num_parameters()},
                            {"vocab", mc.vocab_size},
                            {"micro_batch", o.batch},
                            {"max_seq_len", o.max_seq_len},
                            {"steps", o.steps},
                            {"real_tokens_per_step", static_cast<double>(real) / o.steps},
                            {"padded_tokens_per_step", static_cast<double>(padded) / o.steps},
                            {"padding_fraction", 1.0 - static_cast<double>(real) / static_cast<double>(padded)},
                            {"target_share_of_real_tokens", static_cast<double>(targets) / static_cast<double>(real)},
                            {"real_tokens_per_s_neftune", median(tps_ours)},
                            {"real_tokens_per_s_plain", median(tps_plain)},
                            {"ratio_neftune_vs_plain", median(ratio)},
                            {"real_tokens_per_s_all_steps_neftune", static_cast<double>(real) / sum_ours},
                            {"real_tokens_per_s_all_steps_plain", static_cast<double>(real) / sum_plain},
                            {"per_step", per_step}};
  std::cout << r.dump(2) << std::endl;
  fs::remove_all(dir);
  return 0;
}

}  // namespace neftune::bench
