// Four contenders train on the same batches: neftune with padded batches, neftune with packed ones
// (data.packing), the same packed with NEFTune off (the noise's cost), and a plain loop. The Trainers
// draw them with their EpochSampler, and the plain loop draws the same picks from a sampler with the
// same seed over the Trainer's own tokenized examples (so tokenization, templating and truncation are
// identical). Steps are interleaved (padded, packed, packed without noise, plain, ...; the two packed
// runs swap places every step) and per-step figures reduced by medians. The noise's own time (drawn
// and added on the packed batch) is reported as a share of the packed step beside the on/off ratio.
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
#include "trainer/data/packing.h"
#include "trainer/data/sampler.h"
#include "trainer/model/attention.h"
#include "trainer/neftune.h"
#include "trainer/run/trainer.h"

namespace fs = std::filesystem;

namespace neftune::bench {

namespace {

// Seconds of the attention of one packed micro-batch, forward and backward, summed over the layers:
// packed_attention() on random q, k, v of the batch's shape (the step's other work is the same with
// any values), median of 3.
double packed_attention_seconds(const data::Batch& b, const model::LlamaConfig& c, at::ScalarType st) {
  const int64_t R = b.input_ids.size(0), P = b.input_ids.size(1);
  std::vector<double> t;
  for (int r = 0; r < 3; ++r) {
    const at::Tensor q = at::randn({R, c.num_attention_heads, P, c.head_dim}).to(st).requires_grad_(true);
    const at::Tensor k = at::randn({R, c.num_attention_heads, P, c.head_dim}).to(st).requires_grad_(true);
    const at::Tensor v = at::randn({R, c.num_attention_heads, P, c.head_dim}).to(st).requires_grad_(true);
    const auto t0 = Clock::now();
    for (int64_t l = 0; l < c.num_hidden_layers; ++l)
      model::packed_attention(q, k, v, b.segments, c.attention_window()).sum().backward();
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

// Seconds of the NEFTune noise of one packed micro-batch (drawing it and adding it to embeddings of the
// batch's shape in the step's dtype), median of 3.
double noise_seconds(const data::Batch& b, int64_t dim, at::ScalarType st) {
  const at::Tensor emb = at::zeros({b.input_ids.size(0), b.input_ids.size(1), dim}, st);
  std::vector<double> t;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = Clock::now();
    const at::Tensor noisy = add_neftune_noise(emb, b, 42, r, 5.0);
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

}  // namespace

int run_alpaca_bench(const AlpacaBenchOptions& o, dist::World& world) {
  const fs::path data = fs::path(o.shared_dir) / "fixtures/instructions/alpaca_data_200.json";
  const fs::path tokenizer = fs::path(o.shared_dir) / "fixtures/llama2-tokenizer/tokenizer.model";
  for (const fs::path& p : {data, tokenizer}) {
    if (!fs::exists(p)) {
      std::cerr << "bench_train --data alpaca: " << p.string() << " not found (set --shared)\n";
      return 2;
    }
  }
  const fs::path dir = fs::temp_directory_path() / ("neftune-bench-alpaca-" + std::to_string(getpid()));
  const int64_t seed = 42;
  auto make_config = [&](const std::string& name, const std::vector<std::string>& extra) {
    return config::parse_config(
        "", "bench",
        concat(concat(o.dims.overrides(),
                      {"output_dir=" + (dir / name).string(), "tokenizer.kind=sentencepiece",
                       "tokenizer.path=" + tokenizer.string(), "data.train=" + data.string(), "data.format=alpaca",
                       "data.max_seq_len=" + std::to_string(o.max_seq_len),
                       "model.init.max_seq_len=" + std::to_string(o.max_seq_len), "model.dtype=" + o.dtype,
                       "distributed.param_dtype=" + o.dtype, "train.micro_batch_size=" + std::to_string(o.batch),
                       "train.seed=" + std::to_string(seed), "train.max_steps=1000", "train.lr=1e-4",
                       "logging.level=warn", "logging.progress=off"}),
               extra));
  };
  run::Trainer padded(make_config("padded", {"neftune.alpha=5"}), world);
  run::Trainer packed(make_config("packed", {"neftune.alpha=5", "data.packing=true"}), world);
  run::Trainer packed_off(make_config("packed_off", {"neftune.alpha=0", "data.packing=true"}), world);
  const std::vector<data::Example>& examples = padded.datasets().train;
  const auto& mc = padded.model().config();

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
  auto timed = [](run::Trainer& t, run::StepStats* stats = nullptr) {
    const auto t0 = Clock::now();
    const run::StepStats s = t.train_step();
    if (stats) *stats = s;
    return seconds_since(t0);
  };

  for (int i = 0; i < 2; ++i) {  // warm-up (allocator, oneDNN kernels); all consume the same batches
    timed(padded);
    timed(packed);
    timed(packed_off);
    plain_step(data::collate(examples, sampler.next(o.batch), 0));
  }
  std::vector<double> tps_padded, tps_packed, tps_plain, r_padded, r_packed, r_noise, attn_share, noise_share;
  nlohmann::json per_step = nlohmann::json::array();
  double sum_padded = 0, sum_packed = 0, sum_plain = 0, sum_off = 0;
  int64_t real = 0, padded_positions = 0, packed_positions = 0, targets = 0;
  for (int i = 0; i < o.steps; ++i) {
    run::StepStats s;
    const double t_padded = timed(padded, &s);
    // Packed with and without noise swap places every step, so neither always runs first.
    double t_packed = 0, t_off = 0;
    if (i % 2 == 0) {
      t_packed = timed(packed);
      t_off = timed(packed_off);
    } else {
      t_off = timed(packed_off);
      t_packed = timed(packed);
    }
    const std::vector<data::SamplePick> picks = sampler.next(o.batch);
    const data::Batch b = data::collate(examples, picks, 0);
    const data::Batch pb = data::pack(examples, picks, 0, o.batch * o.max_seq_len);
    if (b.n_tokens != s.tokens || b.n_targets != s.targets) {
      std::cerr << "bench_train --data alpaca: the plain loop's batch differs from the Trainer's\n";
      return 1;
    }
    const double t_plain = plain_step(b);
    const double t_attn = packed_attention_seconds(pb, mc, st);
    const double t_noise = noise_seconds(pb, mc.hidden_size, st);
    const double n = static_cast<double>(b.n_tokens);
    tps_padded.push_back(n / t_padded);
    tps_packed.push_back(n / t_packed);
    tps_plain.push_back(n / t_plain);
    r_padded.push_back(t_plain / t_padded);
    r_packed.push_back(t_plain / t_packed);
    r_noise.push_back(t_packed / t_off);
    attn_share.push_back(t_attn / t_packed);
    noise_share.push_back(t_noise / t_packed);
    sum_padded += t_padded;
    sum_packed += t_packed;
    sum_plain += t_plain;
    sum_off += t_off;
    per_step.push_back({{"real_tokens", b.n_tokens},
                        {"padded_positions", b.input_ids.numel()},
                        {"packed_positions", pb.input_ids.numel()},
                        {"s_padded", t_padded},
                        {"s_packed", t_packed},
                        {"s_packed_no_noise", t_off},
                        {"s_plain", t_plain},
                        {"s_packed_attention", t_attn},
                        {"s_packed_noise", t_noise}});
    real += b.n_tokens;
    targets += b.n_targets;
    padded_positions += b.input_ids.numel();
    packed_positions += pb.input_ids.numel();
  }
  const double r = static_cast<double>(real);
  const nlohmann::json out = {
      {"data", "alpaca"},
      {"dtype", o.dtype},
      {"threads", at::get_num_threads()},
      {"params", mc.num_parameters()},
      {"vocab", mc.vocab_size},
      {"micro_batch", o.batch},
      {"max_seq_len", o.max_seq_len},
      {"steps", o.steps},
      {"real_tokens_per_step", r / o.steps},
      {"padding_fraction_padded", 1.0 - r / static_cast<double>(padded_positions)},
      {"padding_fraction_packed", 1.0 - r / static_cast<double>(packed_positions)},
      {"target_share_of_real_tokens", static_cast<double>(targets) / r},
      {"real_tokens_per_s",
       {{"neftune_padded", median(tps_padded)},
        {"neftune_packed", median(tps_packed)},
        {"plain_padded", median(tps_plain)}}},
      {"ratio_vs_plain", {{"neftune_padded", median(r_padded)}, {"neftune_packed", median(r_packed)}}},
      {"ratio_packed_vs_padded", median(tps_packed) / median(tps_padded)},
      {"neftune_on_off_step_time_packed", median(r_noise)},
      {"attention_share_of_packed_step", median(attn_share)},
      {"neftune_on_off_step_time_packed_all_steps", sum_packed / sum_off},
      {"noise_share_of_packed_step", median(noise_share)},
      {"real_tokens_per_s_all_steps",
       {{"neftune_padded", r / sum_padded}, {"neftune_packed", r / sum_packed}, {"plain_padded", r / sum_plain}}},
      {"per_step", per_step}};
  std::cout << out.dump(2) << '\n';
  fs::remove_all(dir);
  return 0;
}

}  // namespace neftune::bench
