// Throughput of `neftune train` (the Trainer's optimizer step: data pipeline, NEFTune, FSDP units,
// AdamW) at world size 1, against a plain LibTorch loop of the same model and batch, with NEFTune on
// and off, and achieved FLOP/s as a fraction of the matmul peak measured in the same run.
//
//   build/bin/bench_train [--dtype fp32|bf16] [--steps 8] [--dim 512] [--layers 8] [--seq 512] [--batch 4]
//                         [--activation-checkpointing]
//   build/bin/bench_train --data alpaca [--shared ../shared] [--dtype fp32|bf16] [--steps 8]
//
// --data synthetic (default) trains on fixed-length batches; --data alpaca on the Alpaca fixture with
// the Llama 2 tokenizer, 8 samples of up to 512 tokens per step, padded and packed (bench/train_alpaca.h).
//
// Steps of the three contenders are interleaved (on, off, plain, on, off, plain, ...) and medians
// reported, so machine noise hits all three alike. --activation-checkpointing adds a fourth, NEFTune on
// with train.activation_checkpointing, and reports its step time and the peak of live tensor bytes a
// step adds (counted by bench/counting_allocator.h) against the NEFTune-on run that keeps activations.
#include <ATen/Parallel.h>

#include <unistd.h>  // getpid
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "bench/counting_allocator.h"
#include "bench/plain_llama.h"
#include "bench/train_alpaca.h"
#include "config/config.h"
#include "distributed/world.h"
#include "trainer/neftune.h"
#include "trainer/run/logging.h"
#include "trainer/run/trainer.h"

namespace fs = std::filesystem;
using namespace neftune;
using bench::Clock;
using bench::median;
using bench::seconds_since;

namespace {

// Best-of-5 GFLOP/s of an n x n matmul in `dtype` (the peak this machine reaches with these threads).
double matmul_peak_gflops(at::ScalarType dtype, int64_t n) {
  const at::Tensor a = at::randn({n, n}).to(dtype), b = at::randn({n, n}).to(dtype);
  at::mm(a, b);
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    at::Tensor c = at::mm(a, b);
    (void)c.sum().item<double>();
    best = std::max(best, 2.0 * n * n * n / seconds_since(t0) / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): a failure ends a benchmark with its message
  CLI::App app{"neftune train throughput vs a plain LibTorch loop"};
  std::string dtype = "fp32";
  int steps = 8, threads = 0;
  bool checkpointing = false;
  bench::ModelDims dims{512, 8, 8, 1376};
  int64_t seq = 512, batch = 4;
  app.add_option("--dtype", dtype)->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--steps", steps, "timed steps per contender");
  dims.add_options(app);
  app.add_option("--seq", seq);
  app.add_option("--batch", batch);
  app.add_option("--threads", threads, "0 = all cores");
  app.add_flag("--activation-checkpointing", checkpointing,
               "also time a run with train.activation_checkpointing and compare peak tensor memory");
  std::string data = "synthetic", shared = NEFTUNE_SHARED_DIR;
  app.add_option("--data", data, "synthetic: fixed-length batches | alpaca: the Alpaca fixture, real tokens/s")
      ->check(CLI::IsMember({"synthetic", "alpaca"}));
  app.add_option("--shared", shared, "--data alpaca: the directory holding fixtures/");
  CLI11_PARSE(app, argc, argv);
  const int64_t dim = dims.dim, layers = dims.layers, heads = dims.heads, hidden = dims.hidden;

  run::tune_allocator();  // as neftune's main: applies to both contenders
  auto& world = dist::init_world(&argc, &argv);
  run::setup_console_logging(world.rank, "warn");
  at::set_num_threads(dist::intra_op_threads(world, threads));
  if (data == "alpaca") {
    bench::AlpacaBenchOptions o;
    o.shared_dir = shared;
    o.dtype = dtype;
    o.steps = steps;
    o.dims = dims;
    if (app.count("--seq")) o.max_seq_len = seq;
    if (app.count("--batch")) o.batch = batch;
    const int rc = bench::run_alpaca_bench(o, world);
    dist::finalize_world();
    return rc;
  }
  const at::ScalarType st = dtype == "bf16" ? at::kBFloat16 : at::kFloat;

  const fs::path dir = fs::temp_directory_path() / ("neftune-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  bench::write_full_length_records((dir / "data.jsonl").string(), seq, 64);
  // Installed before any trainer exists, so every tensor of theirs is counted.
  bench::CountingAllocator* counter = checkpointing ? &bench::CountingAllocator::install() : nullptr;
  auto make_config = [&](double alpha, bool recompute = false) {
    return config::parse_config(
        "", "bench",
        bench::concat(dims.overrides(),
                      {"output_dir=" + (dir / (recompute ? "ckpt" : "run" + std::to_string(int(alpha)))).string(),
                       "data.train=" + (dir / "data.jsonl").string(), "data.max_seq_len=" + std::to_string(seq),
                       "model.init.max_seq_len=" + std::to_string(seq), "model.dtype=" + dtype,
                       "distributed.param_dtype=" + dtype, "train.micro_batch_size=" + std::to_string(batch),
                       "train.max_steps=1000", "train.lr=1e-4", "neftune.alpha=" + std::to_string(alpha),
                       std::string("train.activation_checkpointing=") + (recompute ? "true" : "false"),
                       "logging.level=warn", "logging.progress=off"}));
  };
  run::Trainer on(make_config(5.0), world), off(make_config(0.0), world);
  std::unique_ptr<run::Trainer> ckpt =
      checkpointing ? std::make_unique<run::Trainer>(make_config(5.0, true), world) : nullptr;
  // One step, and the most live tensor bytes it held above what was live when it began (activations,
  // gathered units, gradients, temporaries; the model state that outlives the step is not counted).
  std::vector<double> peak_on, peak_ckpt, t_ckpt;
  auto measured_step = [&](run::Trainer& t, std::vector<double>& peaks) {
    t.model().zero_grads();  // as the step begins by doing: last step's gradients are not counted as live
    const int64_t before = counter ? counter->current() : 0;
    if (counter) counter->reset_peak();
    const run::StepStats s = t.train_step();
    if (counter) peaks.push_back(static_cast<double>(counter->peak() - before) / 1e6);
    return s;
  };

  bench::PlainConfig pc;
  pc.dim = dim;
  pc.layers = layers;
  pc.heads = pc.kv_heads = heads;
  pc.hidden = hidden;
  pc.max_len = seq;
  bench::PlainLlama plain(pc);
  plain->to(st);
  torch::optim::AdamW opt(plain->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.0));
  const at::Tensor ids = at::randint(0, 259, {batch, seq}, at::kLong);
  auto plain_step = [&] {
    const auto t0 = Clock::now();
    opt.zero_grad();
    const at::Tensor logits = plain->forward(ids).to(at::kFloat);
    const at::Tensor loss = torch::nn::functional::cross_entropy(logits.narrow(1, 0, seq - 1).reshape({-1, 259}),
                                                                 ids.narrow(1, 1, seq - 1).reshape({-1}));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(plain->parameters(), 1.0);
    opt.step();
    return seconds_since(t0);
  };

  for (int i = 0; i < 2; ++i) {  // warm-up: allocator, oneDNN kernels
    on.train_step();
    off.train_step();
    plain_step();
    if (ckpt) ckpt->train_step();
  }
  std::vector<double> t_on, t_off, t_plain;
  int64_t tokens = 0;
  for (int i = 0; i < steps; ++i) {
    const run::StepStats s = measured_step(on, peak_on);
    t_on.push_back(s.seconds);
    tokens = s.tokens;
    if (ckpt) t_ckpt.push_back(measured_step(*ckpt, peak_ckpt).seconds);
    t_off.push_back(off.train_step().seconds);
    t_plain.push_back(plain_step());
  }
  const double m_on = median(t_on), m_off = median(t_off), m_plain = median(t_plain);
  // The noise itself, timed alone (the end-to-end on/off ratio above carries the machine's noise): the
  // draw for one micro-batch of embeddings, added the way the trainer adds it.
  double noise_s = 0;
  {
    data::Example e;
    e.ids.assign(static_cast<size_t>(seq), 1);
    e.set_prompt_length(1);
    std::vector<data::Example> ex(static_cast<size_t>(batch), e);
    std::vector<data::SamplePick> picks;
    picks.reserve(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) picks.push_back({i, 0});
    const data::Batch b = data::collate(ex, picks, 0);
    const at::Tensor emb = at::randn({batch, seq, dim}).to(st);
    std::vector<double> ts;
    for (int r = 0; r < 20; ++r) {
      const auto t0 = Clock::now();
      const at::Tensor noisy = add_neftune_noise(emb, b, 42, r, 5.0);
      ts.push_back(seconds_since(t0));
    }
    noise_s = median(ts);
  }
  const auto& mc = on.model().config();
  const double matmul_params = static_cast<double>(mc.num_parameters());  // tied head: the embedding is a matmul once
  const double flops = 6.0 * matmul_params * tokens + 12.0 * layers * batch * seq * seq * dim;
  const double peak = matmul_peak_gflops(st, 2048);
  const double achieved = flops / m_off / 1e9;
  nlohmann::json r = {{"dtype", dtype},
                      {"threads", at::get_num_threads()},
                      {"params", mc.num_parameters()},
                      {"batch", batch},
                      {"seq", seq},
                      {"tokens_per_step", tokens},
                      {"step_s_neftune_on", m_on},
                      {"step_s_neftune_off", m_off},
                      {"step_s_plain_libtorch", m_plain},
                      {"tokens_per_s_neftune", tokens / m_on},
                      {"tokens_per_s_plain", tokens / m_plain},
                      {"ratio_ours_vs_plain", m_plain / m_on},
                      {"ratio_ours_off_vs_plain", m_plain / m_off},
                      {"step_time_ratio_neftune_on_vs_off", m_on / m_off},
                      {"neftune_noise_s_per_step", noise_s},
                      {"step_time_ratio_neftune_from_noise_cost", (m_off + noise_s) / m_off},
                      {"achieved_gflops", achieved},
                      {"matmul_peak_gflops", peak},
                      {"fraction_of_matmul_peak", achieved / peak}};
  if (ckpt) {
    const double p_on = *std::max_element(peak_on.begin(), peak_on.end());
    const double p_ckpt = *std::max_element(peak_ckpt.begin(), peak_ckpt.end());
    r["activation_checkpointing"] = {{"step_s_on", median(t_ckpt)},
                                     {"step_s_off", m_on},
                                     {"step_time_ratio_on_vs_off", median(t_ckpt) / m_on},
                                     {"step_peak_tensor_mb_on", p_ckpt},
                                     {"step_peak_tensor_mb_off", p_on},
                                     {"step_peak_tensor_ratio_on_vs_off", p_ckpt / p_on}};
  }
  std::cout << r.dump(2) << '\n';
  fs::remove_all(dir);
  dist::finalize_world();
  return 0;
}
