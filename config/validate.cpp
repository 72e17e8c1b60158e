// Range and cross-field checks. Each failure names the key, what was found and what to do.
#include <cmath>
#include <sstream>

#include "config/config.h"

namespace neftune::config {
namespace {

template <class T>
std::string str(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

[[noreturn]] void bad(const std::string& key, const std::string& what) {
  throw ConfigError("config: " + key + ": " + what);
}

void at_least(const std::string& key, int64_t v, int64_t lo) {
  if (v < lo) bad(key, "must be >= " + str(lo) + " (got " + str(v) + ")");
}

// Absolute sanity bounds: far above any real run, low enough that nothing sized by the value (a
// model, a batch, a generated dataset) is attempted before the error.
void between(const std::string& key, int64_t v, int64_t lo, int64_t hi) {
  at_least(key, v, lo);
  if (v > hi) bad(key, "must be <= " + str(hi) + " (got " + str(v) + ")");
}

void in_range(const std::string& key, double v, double lo, double hi, bool hi_open) {
  if (!(v >= lo) || (hi_open ? !(v < hi) : !(v <= hi)))
    bad(key, "must be in [" + str(lo) + ", " + str(hi) + (hi_open ? ")" : "]") + " (got " + str(v) + ")");
}

}  // namespace

void validate(const TrainConfig& c) {
  if (c.output_dir.empty()) bad("output_dir", "must not be empty");

  const ModelInit& m = c.model.init;
  between("model.init.dim", m.dim, 1, kMaxModelDim);
  between("model.init.n_layers", m.n_layers, 1, kMaxLayers);
  at_least("model.init.n_heads", m.n_heads, 1);
  at_least("model.init.n_kv_heads", m.n_kv_heads, 1);
  between("model.init.hidden_dim", m.hidden_dim, 1, kMaxHiddenDim);
  between("model.init.max_seq_len", m.max_seq_len, 2, kMaxPositions);
  if (m.dim % m.n_heads != 0)
    bad("model.init.dim", "must be divisible by model.init.n_heads (" + str(m.dim) + " % " + str(m.n_heads) + " != 0)");
  if (m.n_heads % m.n_kv_heads != 0) {
    bad("model.init.n_kv_heads",
        "must divide model.init.n_heads (" + str(m.n_heads) + " % " + str(m.n_kv_heads) + " != 0)");
  }
  if ((m.dim / m.n_heads) % 2 != 0) bad("model.init.dim", "head dim (dim / n_heads) must be even for RoPE");
  if (!(m.rope_theta > 0)) bad("model.init.rope_theta", "must be > 0");
  const RopeScalingInit& rs = m.rope_scaling;
  if (rs.type != RopeScalingType::none && !(rs.factor > 0 && std::isfinite(rs.factor)))
    bad("model.init.rope_scaling.factor", "must be > 0 (got " + str(rs.factor) + ")");
  if (rs.type == RopeScalingType::llama3) {
    if (!(rs.low_freq_factor > 0 && std::isfinite(rs.low_freq_factor)))
      bad("model.init.rope_scaling.low_freq_factor", "must be > 0 (got " + str(rs.low_freq_factor) + ")");
    if (!(rs.high_freq_factor > rs.low_freq_factor && std::isfinite(rs.high_freq_factor))) {
      bad("model.init.rope_scaling.high_freq_factor",
          "must be > low_freq_factor (got " + str(rs.high_freq_factor) + " and " + str(rs.low_freq_factor) + ")");
    }
    at_least("model.init.rope_scaling.original_context", rs.original_context, 1);
  }
  if (!(m.norm_eps > 0)) bad("model.init.norm_eps", "must be > 0");
  if (!(m.init_std > 0)) bad("model.init.init_std", "must be > 0");

  if (c.tokenizer.kind == TokenizerKind::sentencepiece && !c.tokenizer.path && !c.model.path)
    bad("tokenizer.path", "sentencepiece needs tokenizer.path or model.path (with a tokenizer.model in it)");
  if (c.tokenizer.kind == TokenizerKind::hf && !c.tokenizer.path && !c.model.path)
    bad("tokenizer.path", "hf needs tokenizer.path or model.path (with a tokenizer.json in it)");

  at_least("data.max_seq_len", c.data.max_seq_len, 8);
  if (!c.data.train) {
    between("data.builtin_train_size", c.data.builtin_train_size, 1, kMaxBuiltinSamples);
    between("data.builtin_eval_size", c.data.builtin_eval_size, 0, kMaxBuiltinSamples);
  }
  at_least("data.eval_max_samples", c.data.eval_max_samples, 0);
  if (c.data.pack_length != 0) between("data.pack_length", c.data.pack_length, c.data.max_seq_len, kMaxPositions);

  if (c.neftune.alpha && !(*c.neftune.alpha >= 0))
    bad("neftune.alpha", "must be >= 0 (got " + str(*c.neftune.alpha) + "); use null or 0 to turn NEFTune off");

  const TrainSection& t = c.train;
  at_least("train.seed", t.seed, 0);
  between("train.micro_batch_size", t.micro_batch_size, 1, kMaxBatch);
  between("train.accumulation_steps", t.accumulation_steps, 1, kMaxBatch);
  if (t.max_steps) at_least("train.max_steps", *t.max_steps, 1);
  if (t.epochs && !(*t.epochs > 0 && *t.epochs <= kMaxEpochs))
    bad("train.epochs", "must be in (0, " + str(kMaxEpochs) + "] (got " + str(*t.epochs) + ")");
  if (!t.max_steps && !t.epochs) bad("train.max_steps", "set train.max_steps or train.epochs (both are null)");
  if (!(t.lr >= 0)) bad("train.lr", "must be >= 0 (got " + str(t.lr) + ")");
  in_range("train.warmup_ratio", t.warmup_ratio, 0, 1, true);
  in_range("train.min_lr_ratio", t.min_lr_ratio, 0, 1, false);
  if (!(t.weight_decay >= 0)) bad("train.weight_decay", "must be >= 0");
  in_range("train.adam_beta1", t.adam_beta1, 0, 1, true);
  in_range("train.adam_beta2", t.adam_beta2, 0, 1, true);
  if (!(t.adam_eps > 0)) bad("train.adam_eps", "must be > 0");
  if (t.max_grad_norm && !(*t.max_grad_norm >= 0))
    bad("train.max_grad_norm", "must be >= 0, or null/0 for no clipping");
  at_least("train.eval_every_steps", t.eval_every_steps, 0);
  at_least("train.loss_chunk_tokens", t.loss_chunk_tokens, 0);
  between("train.threads", t.threads, 0, kMaxThreads);
  if (!(c.distributed.timeout_s >= 0))
    bad("distributed.timeout_s", "must be >= 0 (got " + str(c.distributed.timeout_s) + "); 0 waits forever");

  at_least("checkpoint.every_steps", c.checkpoint.every_steps, 0);
  at_least("checkpoint.keep_last", c.checkpoint.keep_last, 1);
  if (c.checkpoint.resume.empty()) bad("checkpoint.resume", "must be auto, never or a checkpoint directory");

  static const char* levels[] = {"trace", "debug", "info", "warn", "error"};
  bool level_ok = false;
  for (const char* l : levels) level_ok = level_ok || c.logging.level == l;
  if (!level_ok)
    bad("logging.level", "must be one of trace | debug | info | warn | error (got '" + c.logging.level + "')");
  at_least("logging.log_every_steps", c.logging.log_every_steps, 1);
}

}  // namespace neftune::config
