#include "trainer/run/trainer.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "config/config.h"
#include "trainer/data/packing.h"
#include "trainer/io/crc32c.h"
#include "trainer/io/file_write.h"
#include "trainer/neftune.h"
#include "trainer/optim/clip.h"
#include "trainer/optim/schedule.h"
#include "trainer/run/device.h"
#include "trainer/run/logging.h"
#include "trainer/run/memory_budget.h"
#include "trainer/run/metrics.h"
#include "trainer/run/progress.h"
#include "trainer/run/stop_signal.h"

namespace neftune::run {
namespace fs = std::filesystem;

namespace {

at::ScalarType to_dtype(config::DType d) { return d == config::DType::bf16 ? at::kBFloat16 : at::kFloat; }

// The integer that `s` starts with, and in *end where it ends; nullopt when `s` starts with none.
std::optional<long long> leading_integer(const char* s, const char** end) {
  char* e = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &e, 10);
  if (e == s || errno == ERANGE) return std::nullopt;
  *end = e;
  return v;
}

// NEFTUNE_INJECT_FAILURE=RANK:STEP makes that rank throw at the start of that (1-based) step: the
// documented way to check that one failing rank takes the whole job down instead of hanging it.
// NEFTUNE_INJECT_STOP=STEP acts as if SIGTERM arrived during that step: a deterministic preemption.
// A value of another form injects nothing.
void maybe_inject_stop(int64_t step) {
  static const char* spec = std::getenv("NEFTUNE_INJECT_STOP");
  const char* end = nullptr;
  if (spec && leading_integer(spec, &end) == step) request_stop();
}

void maybe_inject_failure(int rank, int64_t step) {
  static const char* spec = std::getenv("NEFTUNE_INJECT_FAILURE");
  if (!spec) return;
  const char* end = nullptr;
  const std::optional<long long> r = leading_integer(spec, &end);
  const std::optional<long long> s = r && *end == ':' ? leading_integer(end + 1, &end) : std::nullopt;
  if (r == rank && s == step) {
    throw std::runtime_error("injected failure on rank " + std::to_string(rank) + " at step " + std::to_string(step) +
                             " (NEFTUNE_INJECT_FAILURE)");
  }
}

// Thrown by evaluate() on every rank when a stop was requested during it.
struct EvalStopped : std::runtime_error {
  EvalStopped() : std::runtime_error("[eval] stopped by a stop request") {}
};

// evaluate(), or nullopt when a stop request ended it (on every rank alike).
std::optional<double> evaluate_unless_stopped(Trainer& t) {
  try {
    return t.evaluate();
  } catch (const EvalStopped&) {
    return std::nullopt;
  }
}

}  // namespace

namespace {
// Between setup's phases: when any rank was asked to stop (a signal, a cancel), every rank gives up
// here together rather than after the first step; `after` names the phase just done.
void stop_if_requested(dist::Communicator& host, const char* after) {
  if (host.all_reduce_scalar(stop_requested() ? 1.0 : 0.0, dist::ReduceOp::max) > 0) {
    throw StopRequested(std::string("[setup] stop requested (after ") + after +
                        "): exiting before the first step, nothing to save");
  }
}
}  // namespace

Trainer::Trainer(config::TrainConfig cfg, dist::World& world, TrainerOptions options)
    : cfg_(std::move(cfg)), world_(world), options_(options) {
  setup();
}

void Trainer::setup() {
  auto& host = *world_.host;
  dist::agree(host, [&] {
    if (rank0()) dirs_ = std::make_unique<RunDirs>(cfg_);
  });
  host.barrier();
  add_file_logging(cfg_.logging, world_.rank, cfg_.output_dir);

  std::unique_ptr<model::HfCheckpoint> base;  // the pretrained weights (validated even when resuming)
  dist::agree(host, [&] {
    tok_ = tok::load_tokenizer(cfg_.tokenizer, cfg_.model.path);
    if (cfg_.model.path) {
      base = std::make_unique<model::HfCheckpoint>(*cfg_.model.path);
      mcfg_ = base->config();
      if (tok_->vocab_size() > mcfg_.vocab_size) {
        throw UserError("tokenizer has " + std::to_string(tok_->vocab_size()) + " ids but the model's vocab_size is " +
                        std::to_string(mcfg_.vocab_size) + " (tokenizer.kind/path does not match model.path)");
      }
    } else {
      mcfg_ = model::LlamaConfig::from_init(cfg_.model.init, tok_->vocab_size(), tok_->bos_id(), tok_->eos_id());
    }
    if (cfg_.data.max_seq_len > mcfg_.max_position_embeddings) {
      throw UserError("config: data.max_seq_len " + std::to_string(cfg_.data.max_seq_len) +
                      " exceeds the model's max_position_embeddings " + std::to_string(mcfg_.max_position_embeddings) +
                      " (lower data.max_seq_len)");
    }
  });
  stop_if_requested(host, "loading the tokenizer and model config");
  spdlog::info("[model] {} {} params: {} layers, d={}, heads {}/{} kv, ffn {}, vocab {}, tied={}",
               model::architecture_name(mcfg_.model_type), mcfg_.num_parameters(), mcfg_.num_hidden_layers,
               mcfg_.hidden_size, mcfg_.num_attention_heads, mcfg_.num_key_value_heads, mcfg_.intermediate_size,
               mcfg_.vocab_size, mcfg_.tie_word_embeddings);

  dist::agree(host, [&] {
    data_ = load_datasets(cfg_, *tok_);
    check_global_batch(cfg_, world_.size, data_);
  });
  spdlog::info("[data] {}", describe(data_));
  stop_if_requested(host, "tokenizing the data");

  dist::agree(host, [&] {
    tc_ = dist::make_training_comm(world_, cfg_.distributed.backend, cfg_.distributed.timeout_s);
    check_training_memory(mcfg_, cfg_, world_, tc_.device);  // before the model's memory is allocated
    dist::ShardingOptions so;
    so.mode = cfg_.distributed.sharding;
    so.compute_dtype = to_dtype(cfg_.model.dtype);
    so.param_dtype = to_dtype(cfg_.distributed.param_dtype);
    so.reduce_dtype = to_dtype(cfg_.distributed.reduce_dtype);
    so.device = tc_.device;
    model_ = std::make_unique<model::ShardedLlama>(mcfg_, *tc_.comm, so, cfg_.distributed.prefetch);
    model_->set_activation_checkpointing(cfg_.train.activation_checkpointing);
    model_->set_loss_chunk_tokens(cfg_.train.loss_chunk_tokens);
  });
  set_fp32_matmul_precision(tc_.device, to_dtype(cfg_.model.dtype), cfg_.train.tf32);
  checkpointer_ = std::make_unique<Checkpointer>(cfg_, world_);
  if (cfg_.data.train) {
    checkpointer_->set_train_data(
        ckpt::DataSum{*cfg_.data.train, data_.train_read.bytes, io::crc32c_text(data_.train_read.crc32c)});
  }
  if (options_.overwrite) {
    dist::agree(host, [&] {
      if (!rank0()) return;
      const std::string moved = move_checkpoints_aside(checkpointer_->root());
      if (!moved.empty())
        spdlog::warn("[ckpt] --overwrite: moved the checkpoints that were in {} to {}", checkpointer_->root(), moved);
    });
  }
  const std::optional<std::string> resume = checkpointer_->select_resume();
  opt_state_.resize(model_->units().size());
  TrainProgress progress;
  if (resume) {
    progress = checkpointer_->load(*resume, *model_, opt_state_);
    saved_step_ = step_ = progress.step;
  } else {
    checkpointer_->start_new_run();
  }
  // Never mix with (or prune) another run's checkpoints.
  dist::agree(host, [&] {
    if (!rank0()) return;
    const std::vector<std::string> foreign = checkpointer_->foreign_checkpoints();
    if (foreign.empty()) return;
    std::string names;
    for (size_t i = 0; i < foreign.size() && i < 3; ++i) names += (i ? ", " : "") + foreign[i];
    if (foreign.size() > 3) names += ", ... (" + std::to_string(foreign.size()) + " in all)";
    if (!resume && cfg_.checkpoint.resume == "auto") {  // auto found none it could resume from
      throw UserError("checkpoint.dir " + checkpointer_->root() + " holds checkpoints (" + names +
                      ") but none could be resumed from (each one's reason is logged above): to start over, pass "
                      "--overwrite to move them aside into " +
                      checkpointer_->root() + ".replaced-<time>, or choose another output_dir or checkpoint.dir");
    }
    throw UserError(
        "checkpoint.dir " + checkpointer_->root() + " holds checkpoints of another run (" + names + ") and this run " +
        (resume ? "resumed from " + *resume : "starts fresh (checkpoint.resume: " + cfg_.checkpoint.resume + ")") +
        ": to continue that run, --set checkpoint.resume=auto; to start a new run, choose another output_dir or "
        "checkpoint.dir, or pass --overwrite to move them aside into " +
        checkpointer_->root() + ".replaced-<time>");
  });
  if (!resume) {
    dist::agree(host, [&] {
      if (base) {
        model_->load(*base);
      } else {
        model_->init_random(static_cast<uint64_t>(cfg_.train.seed));
      }
    });
  }
  stop_if_requested(host, "loading the weights");
  int64_t shard_bytes = 0;
  for (auto* u : model_->units()) shard_bytes += u->params().numel() * 4;
  spdlog::info("[dist] world {} (backend {}, device {}), sharding {}, {} units, fp32 master shard {:.1f} MB per rank",
               world_.size, tc_.comm->backend(), tc_.device.str(), config::to_string(cfg_.distributed.sharding),
               model_->units().size(), shard_bytes / 1e6);

  for (auto* u : model_->units()) decay_ranges_.push_back(u->decay_ranges());
  sampler_ = std::make_unique<data::EpochSampler>(static_cast<int64_t>(data_.train.size()),
                                                  static_cast<uint64_t>(cfg_.train.seed));
  if (resume) {
    // A checkpoint from before data checksums, resumed on a shorter file, would point past its end.
    dist::agree(host, [&] {
      if (progress.sampler_position > static_cast<int64_t>(data_.train.size())) {
        throw io::CheckpointError(*resume + ": its sampler position " + std::to_string(progress.sampler_position) +
                                  " is past the " + std::to_string(data_.train.size()) +
                                  " training examples: the data changed since it was written; restore it to resume, "
                                  "or start a new run (--overwrite, or another output_dir)");
      }
    });
    sampler_->seek(progress.sampler_epoch, progress.sampler_position);
  }
  const int64_t global_batch = cfg_.train.micro_batch_size * cfg_.train.accumulation_steps * world_.size;
  if (cfg_.train.max_steps) {
    total_steps_ = *cfg_.train.max_steps;
  } else if (cfg_.train.epochs) {
    total_steps_ = static_cast<int64_t>(
        std::ceil(*cfg_.train.epochs * static_cast<double>(data_.train.size()) / static_cast<double>(global_batch)));
  } else {
    throw config::ConfigError("train.max_steps: set train.max_steps or train.epochs");  // validate() refuses it first
  }
  if (rank0()) {
    io::write_file_atomic((fs::path(cfg_.output_dir) / "config.yaml").string(), config::dump_config(cfg_));
    const std::string metrics_path = (fs::path(cfg_.output_dir) / "metrics.jsonl").string();
    // A resumed run continues the file from its checkpoint: lines of steps after it are dropped.
    if (resume) keep_metrics_through(metrics_path, step_);
    metrics_ = std::make_unique<MetricsWriter>(metrics_path, !resume);
  }
  if (cfg_.data.packing) {
    pack_length_ =
        cfg_.data.pack_length > 0 ? cfg_.data.pack_length : cfg_.train.micro_batch_size * cfg_.data.max_seq_len;
  }
  spdlog::info("[train] {} steps of {} samples (micro-batch {} x accumulation {} x {} ranks), NEFTune alpha {}, {}",
               total_steps_, global_batch, cfg_.train.micro_batch_size, cfg_.train.accumulation_steps, world_.size,
               cfg_.neftune.alpha.value_or(0.0),
               pack_length_ > 0 ? "packed rows of at most " + std::to_string(pack_length_) + " tokens"
                                : std::string("padded batches"));
}

TrainSummary Trainer::train() {
  TrainSummary summary;
  ProgressBar bar(cfg_.logging.progress, rank0(), step_, total_steps_);
  set_console_quiet(bar.active());
  const int64_t eval_every = cfg_.train.eval_every_steps, ckpt_every = cfg_.checkpoint.every_steps;
  while (step_ < total_steps_) {
    const StepStats s = train_step();
    // One max-reduction: the peak memory over ranks, and whether any rank was signalled to stop
    // (SIGTERM/SIGUSR1), so every rank stops at the same step.
    at::Tensor maxes = at::tensor({peak_rss_mb(), stop_requested() ? 1.0 : 0.0}, at::kDouble);
    world_.host->all_reduce(maxes, dist::ReduceOp::max)->wait();
    bool stop = maxes[1].item<double>() > 0;
    write_step_metrics(s, maxes[0].item<double>());
    if (observer_.on_step) observer_.on_step(s, total_steps_);
    bar.update(s.step, s.loss, s.tokens / s.seconds);
    summary.final_loss = s.loss;
    if (!stop && eval_every > 0 && s.step % eval_every == 0 && s.step < total_steps_ && !data_.eval.empty())
      stop = !evaluate_unless_stopped(*this);
    if ((ckpt_every > 0 && s.step % ckpt_every == 0) || stop) save_checkpoint();
    if (stop) {
      bar.finish();
      set_console_quiet(false);
      spdlog::warn("[train] stop requested: checkpoint written at step {}; exiting to be resumed", step_);
      summary.steps = step_;
      summary.preempted = true;
      return summary;
    }
  }
  bar.finish();
  set_console_quiet(false);
  if (saved_step_ != step_) save_checkpoint();
  if (!data_.eval.empty()) summary.final_eval_loss = evaluate_unless_stopped(*this);
  if (!data_.eval.empty() && !summary.final_eval_loss) {
    // The checkpoint of the last step is written: a resumed run only redoes this eval and the export.
    spdlog::warn("[train] stop requested during the final eval: checkpoint at step {} kept; exiting to be resumed",
                 step_);
    summary.steps = step_;
    summary.preempted = true;
    return summary;
  }
  summary.steps = step_;
  summary.final_dir = (fs::path(cfg_.output_dir) / "final").string();
  export_final(summary.final_dir);
  spdlog::info("[train] done: {} steps, {}{}, final model in {}", step_,
               summary.final_loss ? fmt::format("loss {:.4f}", *summary.final_loss)
                                  : std::string("no step left to run after resuming"),
               summary.final_eval_loss ? fmt::format(", eval_loss {:.4f}", *summary.final_eval_loss) : "",
               summary.final_dir);
  return summary;
}

StepStats Trainer::train_step() {
  maybe_inject_failure(world_.rank, step_ + 1);
  maybe_inject_stop(step_ + 1);
  const auto t0 = std::chrono::steady_clock::now();
  const auto& t = cfg_.train;
  const int64_t mbs = t.micro_batch_size, accum = t.accumulation_steps, world = world_.size;
  const bool token_norm = t.loss_normalization == config::LossNormalization::token;
  const double alpha = cfg_.neftune.alpha.value_or(0.0);
  const int64_t step = step_;

  // The global batch is the same set of samples at any world size; this rank takes its slice.
  const std::vector<data::SamplePick> picks = sampler_->next(mbs * accum * world);
  StepStats s;
  for (const auto& p : picks) {
    s.tokens += static_cast<int64_t>(data_.train[p.index].ids.size());
    s.targets += data_.train[p.index].n_targets();
  }

  model_->zero_grads();
  // The losses stay on the device until the step is done: one device-to-host read per step, not one per
  // micro-batch (each read waits for the device to finish everything queued before it).
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(tc_.device));
  at::Tensor mean_sum = at::zeros_like(loss_sum);
  for (int64_t m = 0; m < accum; ++m) {
    const auto first = picks.begin() + (world_.rank * accum + m) * mbs;
    const data::Batch batch = data::make_batch(data_.train, {first, first + mbs}, tok_->pad_id(), pack_length_);
    // token: every real token of the step weighs the same; microbatch_mean: each micro-batch does.
    const double scale =
        token_norm ? 1.0 / static_cast<double>(s.targets) : 1.0 / static_cast<double>(batch.n_targets * accum * world);
    std::function<at::Tensor(const at::Tensor&)> noise;
    if (alpha > 0) {
      noise = [&](const at::Tensor& e) {
        return add_neftune_noise(e, batch, static_cast<uint64_t>(t.seed), step, alpha);
      };
    }
    const bool reduce = cfg_.distributed.reduce_every_microbatch || m == accum - 1;
    const model::MicroResult r = model_->forward_backward(batch, scale, reduce, noise);
    const at::Tensor micro = r.loss_sum.to(at::kDouble);
    loss_sum.add_(micro);
    mean_sum.add_(micro / static_cast<double>(r.n_targets));
  }
  at::Tensor sums = at::stack({loss_sum, mean_sum}).cpu();
  world_.host->all_reduce(sums, dist::ReduceOp::sum)->wait();
  s.loss = token_norm ? sums[0].item<double>() / static_cast<double>(s.targets)
                      : sums[1].item<double>() / static_cast<double>(accum * world);
  if (!std::isfinite(s.loss)) {
    // The loss is all-reduced: every rank sees it and stops here together (an agreed failure).
    throw dist::AgreedFailure("[train] loss is " + std::to_string(s.loss) + " at step " + std::to_string(step + 1) +
                                  " (lower train.lr, or check the data)",
                              /*user_error=*/false);
  }

  const auto& units = model_->units();
  s.grad_norm = optim::global_grad_norm(units, *tc_.comm);
  optim::clip_grads(units, s.grad_norm, t.max_grad_norm.value_or(0.0));
  s.lr = optim::lr_at(step, total_steps_, t);
  const optim::AdamWOptions o{t.adam_beta1, t.adam_beta2, t.adam_eps, t.weight_decay};
  for (size_t i = 0; i < units.size(); ++i) {
    optim::adamw_update(units[i]->params(), units[i]->grads(), opt_state_[i], decay_ranges_[i], s.lr, step + 1, o);
    units[i]->mark_params_changed();
  }
  // On a GPU the AdamW kernels are only queued by now: wait for them (a one-value read, after the last
  // unit's update on the same stream), so step_time_s is this step's time, not the previous step's tail.
  if (tc_.device.is_cuda()) (void)units.back()->params().narrow(0, 0, 1).cpu();
  step_ = step + 1;
  s.step = step_;
  s.epoch = sampler_->epoch_progress();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

double Trainer::evaluate() {
  // Held-out examples are dealt round-robin to ranks; every rank runs the same number of batches (a
  // rank with nothing left runs a dummy batch and ignores it) so the collectives stay matched.
  const int64_t n = static_cast<int64_t>(data_.eval.size()), mbs = cfg_.train.micro_batch_size;
  std::vector<data::SamplePick> mine;
  for (int64_t i = world_.rank; i < n; i += world_.size) mine.push_back({i, 0});
  const int64_t per_rank = (n + world_.size - 1) / world_.size;
  const int64_t batches = (per_rank + mbs - 1) / mbs;
  at::Tensor loss = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(tc_.device));
  double count = 0;
  for (int64_t b = 0; b < batches; ++b) {
    // A stop request (signal or cancel) on any rank ends a long eval at once, on every rank together.
    if (world_.host->all_reduce_scalar(stop_requested() ? 1.0 : 0.0, dist::ReduceOp::max) > 0) throw EvalStopped();
    const int64_t lo = b * mbs, hi = std::min<int64_t>(lo + mbs, static_cast<int64_t>(mine.size()));
    const bool dummy = lo >= hi;
    const std::vector<data::SamplePick> picks =
        dummy ? std::vector<data::SamplePick>{{0, 0}}
              : std::vector<data::SamplePick>(mine.begin() + lo, mine.begin() + hi);
    const model::MicroResult r = model_->evaluate(data::make_batch(data_.eval, picks, tok_->pad_id(), pack_length_));
    if (!dummy) {
      loss.add_(r.loss_sum.to(at::kDouble));
      count += static_cast<double>(r.n_targets);
    }
  }
  at::Tensor sums = at::stack({loss.cpu(), at::scalar_tensor(count, at::kDouble)});
  world_.host->all_reduce(sums, dist::ReduceOp::sum)->wait();
  const double eval_loss = sums[0].item<double>() / sums[1].item<double>();
  spdlog::info("[eval] step {}: eval_loss {:.4f} over {} held-out examples", step_, eval_loss, n);
  if (metrics_) metrics_->write({{"step", step_}, {"eval_loss", eval_loss}, {"eval_examples", n}});
  if (observer_.on_eval) observer_.on_eval(step_, eval_loss);
  return eval_loss;
}

std::string Trainer::save_checkpoint() {
  const TrainProgress p{step_, sampler_->epoch(), sampler_->position()};
  std::string dir = checkpointer_->save(p, *model_, opt_state_, *tok_);
  saved_step_ = step_;
  return dir;
}

void Trainer::write_step_metrics(const StepStats& s, double peak_rss) {
  const double tps = static_cast<double>(s.tokens) / s.seconds;
  if (metrics_) {
    metrics_->write({{"step", s.step},
                     {"epoch", s.epoch},
                     {"loss", s.loss},
                     {"lr", s.lr},
                     {"grad_norm", s.grad_norm},
                     {"tokens", s.tokens},
                     {"target_tokens", s.targets},
                     {"tokens_per_s", tps},
                     {"step_time_s", s.seconds},
                     {"peak_rss_mb", peak_rss}});
  }
  if (s.step % cfg_.logging.log_every_steps == 0 || s.step == 1 || s.step == total_steps_) {
    spdlog::info("[train] step {}/{} epoch {:.2f} loss {:.4f} lr {:.3g} grad_norm {:.3f} {:.0f} tok/s", s.step,
                 total_steps_, s.epoch, s.loss, s.lr, s.grad_norm, tps);
  }
}

void Trainer::export_final(const std::string& dir) {
  // Written beside the old one and swapped in only when complete: an existing final/ is never lost.
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  if (rank0()) fs::remove_all(tmp);
  model::HfWriteOptions o;
  o.dtype = to_dtype(cfg_.model.dtype);
  model_->export_hf(tmp, o, rank0());
  if (rank0()) {
    tok_->save(tmp);
    fs::remove_all(old);
    if (fs::exists(dir)) fs::rename(dir, old);
    fs::rename(tmp, dir);
    fs::remove_all(old);
  }
  world_.host->barrier();
}

}  // namespace neftune::run
