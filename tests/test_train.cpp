// The training loop: gradient accumulation equivalence (token normalisation), loss normalisation modes,
// eval without noise, the output contract (metrics.jsonl, config.yaml, final/), that loss falls, and that
// a withdrawn cancel request never hides a stop signal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "config/config.h"
#include "tests/test_util.h"
#include "trainer/infer/model_eval.h"
#include "trainer/model/llama.h"
#include "trainer/run/stop_signal.h"
#include "trainer/run/trainer.h"

namespace neftune::run {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

config::TrainConfig tiny_config(const std::string& out, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> sets = {"output_dir=" + out,          "model.init.dim=32",
                                   "model.init.n_layers=2",      "model.init.n_heads=4",
                                   "model.init.n_kv_heads=2",    "model.init.hidden_dim=64",
                                   "data.builtin_train_size=64", "data.builtin_eval_size=16",
                                   "data.max_seq_len=256",       "train.lr=1e-3",
                                   "train.max_steps=1",          "train.max_grad_norm=null",
                                   "logging.progress=off",       "logging.level=warn"};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return config::parse_config("", "test", sets);
}

// Gradients of every unit after one step, concatenated.
at::Tensor step_gradients(const config::TrainConfig& cfg, double* loss = nullptr) {
  Trainer t(cfg, dist::world());
  const StepStats s = t.train_step();
  if (loss) *loss = s.loss;
  std::vector<at::Tensor> g;
  for (auto* u : t.model().units()) g.push_back(u->grads().clone());
  return at::cat(g);
}

TEST(Train, AccumulationOf4x2EqualsOneBatchOf8WithTokenNormalisation) {
  TempDir d;
  for (const char* alpha : {"0", "5"}) {  // with NEFTune too: noise is keyed by sample, not by micro-batch
    double loss_a = 0, loss_b = 0;
    const at::Tensor a = step_gradients(tiny_config(d / "a", {"train.micro_batch_size=8", "train.accumulation_steps=1",
                                                              std::string("neftune.alpha=") + alpha}),
                                        &loss_a);
    const at::Tensor b = step_gradients(tiny_config(d / "b", {"train.micro_batch_size=2", "train.accumulation_steps=4",
                                                              std::string("neftune.alpha=") + alpha}),
                                        &loss_b);
    const at::Tensor c = step_gradients(
        tiny_config(d / "c", {"train.micro_batch_size=2", "train.accumulation_steps=4",
                              "distributed.reduce_every_microbatch=false", std::string("neftune.alpha=") + alpha}));
    // fp32: the same sums in a different grouping (and padding to different lengths) -> 1e-5 relative.
    const double scale = a.abs().max().item<double>();
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-5 * scale) << "alpha " << alpha;
    EXPECT_LT((a - c).abs().max().item<double>(), 1e-5 * scale) << "alpha " << alpha;
    EXPECT_NEAR(loss_a, loss_b, 1e-5 * loss_a);
  }
}

TEST(Train, MicrobatchMeanIsThePapersNormalisationAndDiffersFromToken) {
  TempDir d;
  double l_token = 0, l_mean = 0;
  const at::Tensor token = step_gradients(
      tiny_config(d / "t", {"train.micro_batch_size=2", "train.accumulation_steps=4", "neftune.alpha=0"}), &l_token);
  const at::Tensor mean =
      step_gradients(tiny_config(d / "m", {"train.micro_batch_size=2", "train.accumulation_steps=4", "neftune.alpha=0",
                                           "train.loss_normalization=microbatch_mean"}),
                     &l_mean);
  // Built-in answers have different lengths, so weighting micro-batches equally changes the gradient.
  EXPECT_GT((token - mean).abs().max().item<double>(), 1e-4 * token.abs().max().item<double>());
  // With one micro-batch both normalisations are the mean over its tokens.
  const at::Tensor one_t = step_gradients(tiny_config(d / "1t", {"train.micro_batch_size=8", "neftune.alpha=0"}));
  const at::Tensor one_m = step_gradients(tiny_config(
      d / "1m", {"train.micro_batch_size=8", "neftune.alpha=0", "train.loss_normalization=microbatch_mean"}));
  EXPECT_LT((one_t - one_m).abs().max().item<double>(), 1e-6 * one_t.abs().max().item<double>());
}

// Eval adds no noise: the same model evaluated with alpha 15 and alpha 0 gives bit-identical losses
// (with noise in eval, the alpha-15 loss would differ). Training does add it: one step's loss differs.
TEST(Train, EvalHasNoNoiseAndAlphaChangesTraining) {
  TempDir d;
  Trainer noisy(tiny_config(d / "e15", {"neftune.alpha=15"}), dist::world());
  Trainer clean(tiny_config(d / "e0", {"neftune.alpha=0"}), dist::world());
  EXPECT_EQ(noisy.evaluate(), clean.evaluate());  // same seed, same initial weights
  double with = 0, without = 0;
  step_gradients(tiny_config(d / "w", {"neftune.alpha=15"}), &with);
  step_gradients(tiny_config(d / "wo", {"neftune.alpha=0"}), &without);
  EXPECT_NE(with, without);
}

TEST(Train, WritesTheOutputContractAndTheFinalModelLoadsElsewhere) {
  TempDir d;
  const auto cfg = tiny_config(d / "run", {"train.max_steps=6", "train.eval_every_steps=3"});
  Trainer t(cfg, dist::world());
  const TrainSummary s = t.train();
  EXPECT_EQ(s.steps, 6);
  const auto lines = test::read_jsonl(d / "run/metrics.jsonl");
  int steps = 0, evals = 0;
  for (const auto& l : lines) {
    if (l.contains("eval_loss")) {
      ++evals;
      continue;
    }
    ++steps;
    for (const char* key :
         {"step", "epoch", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "step_time_s", "peak_rss_mb"})
      EXPECT_TRUE(l.contains(key)) << key;
    EXPECT_EQ(l["step"].get<int64_t>(), steps);
    EXPECT_GT(l["tokens"].get<int64_t>(), 0);
  }
  EXPECT_EQ(steps, 6);
  EXPECT_EQ(evals, 2);  // at step 3 and at the end
  EXPECT_TRUE(fs::exists(d / "run/config.yaml"));
  EXPECT_TRUE(fs::exists(d / "run/train.log"));
  for (const char* f : {"config.json", "model.safetensors", "neftune_tokenizer.json"})
    EXPECT_TRUE(fs::exists(d / ("run/final/" + std::string(f)))) << f;
  EXPECT_EQ(config::parse_config(test::read_file(d / "run/config.yaml"), "dumped").train.max_steps, 6);

  // final/ holds exactly the trained fp32 weights, and its held-out loss (a separate forward) equals
  // the trainer's eval_loss.
  const auto m = model::LlamaModel::load(d / "run/final", at::kFloat);
  EvalReport r;
  tok::ByteTokenizer tok;
  eval_loss(m, t.datasets().eval, tok.pad_id(), {4}, r);
  ASSERT_TRUE(s.final_eval_loss.has_value());
  EXPECT_NEAR(r.loss, *s.final_eval_loss, 1e-5 * r.loss);  // fp32, different batching of the same sums
}

TEST(Train, LossFallsOnTheBuiltInTasks) {
  TempDir d;
  Trainer t(tiny_config(d / "f", {"train.max_steps=40", "train.micro_batch_size=8", "train.lr=3e-3",
                                  "data.builtin_train_size=400", "train.warmup_ratio=0"}),
            dist::world());
  // Held-out loss (no noise, fixed samples) rather than the noisy per-step training loss. A random
  // model starts near ln(259) = 5.56 nats per token.
  const double before = t.evaluate();
  for (int i = 0; i < 40; ++i) t.train_step();
  const double after = t.evaluate();
  EXPECT_NEAR(before, std::log(259.0), 0.3);
  EXPECT_LT(after, 0.8 * before) << before << " -> " << after;
}

// The daemon withdraws a cancel request when the next job starts; a SIGUSR1 that arrived in between must
// still stop the process (it used to be overwritten, and the daemon ignored the signal).
TEST(StopSignal, WithdrawingACancelRequestKeepsASignal) {
  // In a child process: the flag a signal sets stays set for the life of the process.
  EXPECT_EXIT(
      {
        install_stop_handlers();
        int failures = stop_requested() != 0;
        request_stop();
        failures += stop_requested() != -1 || stop_signal() != 0;
        std::raise(SIGUSR1);  // handled synchronously in this thread
        clear_stop_request();
        failures += stop_requested() != SIGUSR1 || stop_signal() != SIGUSR1;
        request_stop();
        failures += stop_requested() != SIGUSR1;  // the signal wins over a request
        std::fprintf(stderr, "failures=%d\n", failures);
        std::_Exit(failures == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "failures=0");
}

// A stop that arrives during setup (a scheduler's SIGTERM while a large dataset is tokenized) ends setup
// at its next check, rather than after setup and one training step: StopRequested, and nothing written
// but the run's directories.
TEST(StopSignal, AStopDuringSetupEndsSetupBeforeAnyStep) {
  TempDir d;
  request_stop();
  std::string what;
  try {
    Trainer t(tiny_config(d / "run"), dist::world());
  } catch (const StopRequested& e) {
    what = e.what();
  }
  clear_stop_request();
  EXPECT_THAT(what, ::testing::HasSubstr("[setup] stop requested (after loading the tokenizer and model config)"))
      << what;
  EXPECT_TRUE(fs::is_empty(d / "run/checkpoints"));  // made and checked in setup, nothing written
  EXPECT_FALSE(fs::exists(d / "run/metrics.jsonl"));
  EXPECT_FALSE(fs::exists(d / "run/final"));
  // Without the request, the same config trains.
  Trainer t(tiny_config(d / "run2"), dist::world());
  EXPECT_EQ(t.train().steps, 1);
}

}  // namespace
}  // namespace neftune::run