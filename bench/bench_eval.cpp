// `neftune eval`'s held-out loss on the Alpaca fixture (Llama 2 tokenizer, Alpaca template, max length
// 512) with a random model (bench_train --data alpaca's size: dim 512, 8 layers, 8 heads): real tokens
// per second and peak live tensor bytes of three ways to the same loss:
//   full_logits  padded batches, logits for every position (B, L, V), cross_entropy with ignore_index
//                -100: the way a LibTorch user writes it;
//   padded       run::eval_loss: logits only at the targets, --loss-chunk-tokens at a time;
//   packed       the same with each batch's samples end to end in one row (neftune eval --packing).
// Rounds are interleaved, times reduced by medians; peaks (bench/counting_allocator.h, above the
// model's weights) come from the first round. One JSON object.
//
//   build/bin/bench_eval [--shared ../shared] [--dtype fp32|bf16] [--rounds 3] [--samples 200]
//                        [--batch 8] [--vocab 32000] [--loss-chunk-tokens 512] [--threads 0]
//
// --vocab above the tokenizer's 32000 widens the LM head (Llama 3: 128256) with the same ids.
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "bench/counting_allocator.h"
#include "bench/random_llama.h"
#include "config/config.h"
#include "distributed/world.h"
#include "trainer/data/batch.h"
#include "trainer/data/examples.h"
#include "trainer/data/records.h"
#include "trainer/infer/model_eval.h"
#include "trainer/tokenizer/tokenizer.h"

using namespace neftune;
namespace fs = std::filesystem;

namespace {

// Mean loss over the targets the way it is usually written: every position's logits.
double full_logits_loss(const model::LlamaModel& m, const std::vector<data::Example>& examples, int32_t pad_id,
                        int64_t batch) {
  at::NoGradGuard no_grad;
  double sum = 0;
  int64_t count = 0;
  for (size_t lo = 0; lo < examples.size(); lo += static_cast<size_t>(batch)) {
    std::vector<data::SamplePick> picks;
    for (size_t i = lo; i < std::min(examples.size(), lo + static_cast<size_t>(batch)); ++i)
      picks.push_back({static_cast<int64_t>(i), 0});
    const data::Batch b = data::collate(examples, picks, pad_id);
    const at::Tensor logits = m.forward(b.input_ids);  // (B, L, V) fp32
    sum += at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), b.targets.reshape({-1}), {},
                                  at::Reduction::Sum, -100)
               .item<double>();
    count += b.n_targets;
  }
  return sum / static_cast<double>(count);
}

}  // namespace

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): a failure ends a benchmark with its message
  CLI::App app{"neftune eval's loss: label-only chunked logits, padded and packed, vs full logits"};
  std::string shared = NEFTUNE_SHARED_DIR, dtype = "fp32";
  int rounds = 3, threads = 0;
  int64_t samples = 200, batch = 8, vocab = 32000, chunk = 512;
  app.add_option("--shared", shared, "holds fixtures/instructions/ and fixtures/llama2-tokenizer/");
  app.add_option("--dtype", dtype)->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--rounds", rounds)->check(CLI::PositiveNumber);
  app.add_option("--samples", samples, "records of the fixture (at most 200)")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch)->check(CLI::PositiveNumber);
  app.add_option("--vocab", vocab, "LM head rows (>= the tokenizer's 32000)");
  app.add_option("--loss-chunk-tokens", chunk)->check(CLI::NonNegativeNumber);
  app.add_option("--threads", threads, "0 = all cores");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads > 0 ? threads : dist::usable_cores());

  const fs::path data = fs::path(shared) / "fixtures/instructions/alpaca_data_200.json";
  const fs::path tokenizer = fs::path(shared) / "fixtures/llama2-tokenizer/tokenizer.model";
  for (const fs::path& p : {data, tokenizer}) {
    if (!fs::exists(p)) {
      std::cerr << "bench_eval: " << p.string() << " not found (set --shared)\n";
      return 2;
    }
  }
  const auto tok = tok::make_sentencepiece_tokenizer(tokenizer.string());
  if (vocab < tok->vocab_size()) {
    std::cerr << "bench_eval: --vocab " << vocab << " is below the tokenizer's " << tok->vocab_size() << "\n";
    return 2;
  }
  std::vector<data::Record> records =
      data::read_records(data.string(), config::DataFormat::alpaca, config::OnMalformed::error);
  if (static_cast<int64_t>(records.size()) > samples) records.resize(static_cast<size_t>(samples));
  const int64_t max_len = 512;
  const std::vector<data::Example> examples =
      data::make_examples(records, *tok, max_len, config::TooLong::truncate, data.string());

  config::ModelInit init;
  init.dim = 512;
  init.n_layers = 8;
  init.n_heads = init.n_kv_heads = 8;
  init.hidden_dim = 1376;
  init.max_seq_len = max_len;
  init.tie_embeddings = false;
  const at::ScalarType st = dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  auto& counter = bench::CountingAllocator::install();
  const model::LlamaModel m =
      bench::random_llama(model::LlamaConfig::from_init(init, vocab, tok->bos_id(), tok->eos_id()), 42, st);

  int64_t tokens = 0, targets = 0, padded_positions = 0;
  for (size_t lo = 0; lo < examples.size(); lo += static_cast<size_t>(batch)) {
    int64_t longest = 0, n = 0;
    for (size_t i = lo; i < std::min(examples.size(), lo + static_cast<size_t>(batch)); ++i, ++n) {
      tokens += static_cast<int64_t>(examples[i].ids.size());
      targets += examples[i].n_targets();
      longest = std::max<int64_t>(longest, static_cast<int64_t>(examples[i].ids.size()));
    }
    padded_positions += n * longest;
  }

  struct Contender {
    std::string name;
    std::function<double()> run;  // the mean loss
    std::vector<double> seconds;
    double loss = 0, peak_mb = 0;
  };
  const int32_t pad = tok->pad_id();
  auto eval = [&](bool packing) {
    return [&, packing] {
      run::EvalReport r;
      run::eval_loss(m, examples, pad, {batch, packing, chunk}, r);
      return r.loss;
    };
  };
  std::vector<Contender> cs{{"full_logits", [&] { return full_logits_loss(m, examples, pad, batch); }, {}},
                            {"padded", eval(false), {}},
                            {"packed", eval(true), {}}};
  for (int round = 0; round < rounds; ++round) {
    for (Contender& c : cs) {
      const int64_t before = counter.current();
      counter.reset_peak();
      const auto t0 = bench::Clock::now();
      c.loss = c.run();
      c.seconds.push_back(bench::seconds_since(t0));
      if (round == 0) c.peak_mb = static_cast<double>(counter.peak() - before) / 1e6;
      std::cerr << "round " << round << " " << c.name << ": " << c.seconds.back() << " s, loss " << c.loss << '\n';
    }
  }
  nlohmann::json r = {
      {"dtype", dtype},
      {"threads", at::get_num_threads()},
      {"examples", examples.size()},
      {"real_tokens", tokens},
      {"target_share_of_real_tokens", static_cast<double>(targets) / static_cast<double>(tokens)},
      {"padding_share_of_positions", 1.0 - static_cast<double>(tokens) / static_cast<double>(padded_positions)},
      {"batch", batch},
      {"vocab", vocab},
      {"loss_chunk_tokens", chunk},
      {"rounds", rounds}};
  for (const Contender& c : cs) {
    const double s = bench::median(c.seconds);
    r[c.name] = {{"median_s", s},
                 {"real_tokens_per_s", static_cast<double>(tokens) / s},
                 {"peak_tensor_mb", c.peak_mb},
                 {"loss", c.loss}};
  }
  const double full = r["full_logits"]["median_s"];
  for (const char* n : {"padded", "packed"}) {
    r[std::string(n) + "_speedup_vs_full_logits"] = full / r[n]["median_s"].get<double>();
    r[std::string(n) + "_peak_vs_full_logits"] = r[n]["peak_tensor_mb"].get<double>() / cs[0].peak_mb;
    r[std::string(n) + "_loss_relative_difference"] = std::abs(r[n]["loss"].get<double>() - cs[0].loss) / cs[0].loss;
  }
  std::cout << r.dump(2) << '\n';
  return 0;
}
