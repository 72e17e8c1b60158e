// The one typed config tree. Every field is written once here: its default (the initializer), a one-line
// doc and whether it may change on resume (the visit() call). The YAML parser, the dumper, --help, --set
// and the resume check all walk visit().
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/enums.h"

namespace neftune::config {

// Whether a key may differ between a run and the checkpoint it resumes from: the optional last argument
// of a visit() entry (absent = must_match). may_change on a section covers every key under it. Keys
// that change what is trained (model, data, optimizer, seed, noise) must match; the run's length, its
// checkpointing, logging and sharding may change, and so may the micro-batch split as long as the global
// batch (micro_batch_size x accumulation_steps x ranks) stays the same, which resharding to another
// world size needs.
enum class Resume { must_match, may_change };

// RoPE frequency scaling of a new model, written to its config.json as HF's rope_scaling.
struct RopeScalingInit {
  RopeScalingType type = RopeScalingType::none;
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_context = 8192;

  template <class V>
  void visit(V& v) {
    v("type", type, "none (plain RoPE) | linear (inv_freq / factor) | llama3 (Llama 3.1 frequency bands)");
    v("factor", factor, "linear and llama3: the divisor of the scaled inverse frequencies");
    v("low_freq_factor", low_freq_factor, "llama3: wavelengths above original_context / this are divided by factor");
    v("high_freq_factor", high_freq_factor, "llama3: wavelengths below original_context / this are kept");
    v("original_context", original_context,
      "llama3: the context length before the extension (HF original_max_position_embeddings)");
  }
};

struct ModelInit {
  int64_t dim = 128;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 2;
  int64_t hidden_dim = 352;
  int64_t max_seq_len = 512;
  double rope_theta = 10000.0;
  RopeScalingInit rope_scaling;
  double norm_eps = 1e-5;
  bool tie_embeddings = true;
  double init_std = 0.02;

  template <class V>
  void visit(V& v) {
    v("dim", dim, "hidden size d");
    v("n_layers", n_layers, "decoder layers");
    v("n_heads", n_heads, "attention (query) heads; dim must divide by it");
    v("n_kv_heads", n_kv_heads, "key/value heads (GQA); n_heads must divide by it");
    v("hidden_dim", hidden_dim, "SwiGLU intermediate size");
    v("max_seq_len", max_seq_len,
      "max_position_embeddings of the new model (RoPE tables follow the lengths used, not this)");
    v("rope_theta", rope_theta, "RoPE base (Llama 3: 500000)");
    v.section("rope_scaling", rope_scaling, "RoPE frequency scaling (HF rope_scaling)");
    v("norm_eps", norm_eps, "RMSNorm epsilon");
    v("tie_embeddings", tie_embeddings, "share the embedding matrix with the LM head");
    v("init_std", init_std, "std of the normal init of linear and embedding weights");
  }
};

struct ModelConfig {
  std::optional<std::string> path;
  DType dtype = DType::fp32;
  ModelInit init;

  template <class V>
  void visit(V& v) {
    v("path", path, "HF-format LLaMA checkpoint directory; null = random init from model.init");
    v("dtype", dtype, "compute dtype of activations and gathered weights (fp32 | bf16); master weights stay fp32");
    v.section("init", init, "dims of the random-init model (used only when model.path is null)");
  }
};

struct TokenizerConfig {
  TokenizerKind kind = TokenizerKind::byte;
  std::optional<std::string> path;

  template <class V>
  void visit(V& v) {
    v("kind", kind,
      "byte (256 bytes + BOS/EOS/PAD) | sentencepiece (tokenizer.model) | hf (tokenizer.json, byte-level BPE) | "
      "auto (tokenizer.model, else tokenizer.json, else neftune_tokenizer.json in path/model.path; byte without them)");
    v("path", path, "the tokenizer file, or a directory holding it; null = model.path");
  }
};

struct DataConfig {
  std::optional<std::string> train;
  std::optional<std::string> eval;
  DataFormat format = DataFormat::alpaca;
  ChatTemplateName chat_template = ChatTemplateName::auto_detect;
  TrainOn train_on = TrainOn::assistant;
  int64_t max_seq_len = 512;
  TooLong too_long = TooLong::truncate;
  OnMalformed on_malformed = OnMalformed::error;
  int64_t builtin_train_size = 20000;
  int64_t builtin_eval_size = 200;
  int64_t eval_max_samples = 0;
  bool packing = false;
  int64_t pack_length = 0;

  template <class V>
  void visit(V& v) {
    v("train", train, "Alpaca/Dolly/ShareGPT/messages JSON array or JSONL file; null = the built-in task generator");
    v("eval", eval, "held-out file for eval_loss; null = the built-in held-out split when train is null, else no eval",
      Resume::may_change);
    v("format", format,
      "alpaca (instruction/input/output) | dolly (instruction/context/response) | sharegpt (conversations: from/value) "
      "| "
      "messages (role/content) | auto (per record)");
    v("chat_template", chat_template,
      "how conversations are rendered: auto (the tokenizer_config.json chat_template of tokenizer.path / model.path; "
      "instruction records keep the Alpaca prompt) | llama3 | chatml | qwen3 | llama2 | mistral | alpaca");
    v("train_on", train_on,
      "conversation tokens with a loss: assistant (every assistant turn + its end-of-turn token) | last_assistant | "
      "all");
    v("max_seq_len", max_seq_len, "tokens per sample after templating (BOS..EOS); at most the model's limit");
    v("too_long", too_long,
      "a sample over max_seq_len: truncate (prompt first; conversations drop early turns first, see README) | skip | "
      "error");
    v("on_malformed", on_malformed,
      "a record missing fields or of the wrong type, or a conversation that breaks the turn rules: error | skip "
      "(counted)");
    v("builtin_train_size", builtin_train_size, "samples the built-in generator makes for training");
    v("builtin_eval_size", builtin_eval_size, "samples in the built-in held-out split (disjoint from train)");
    v("eval_max_samples", eval_max_samples, "evaluate on at most this many held-out samples; 0 = all",
      Resume::may_change);
    v("packing", packing,
      "lay each micro-batch's samples end to end in rows (positions restart and attention stays within each "
      "sample; the same samples, loss and noise as padded batches, without the padding)",
      Resume::may_change);
    v("pack_length", pack_length,
      "tokens per packed row, at least max_seq_len (a sample is never split); 0 = micro_batch_size * max_seq_len "
      "(each micro-batch in one row)",
      Resume::may_change);
  }
};

struct NeftuneConfig {
  std::optional<double> alpha = 5.0;

  template <class V>
  void visit(V& v) {
    v("alpha", alpha, "noise scale: delta ~ U(-1,1) * alpha / sqrt(L_i * d) per sample; null or 0 = off");
  }
};

struct TrainSection {
  int64_t seed = 42;
  int64_t micro_batch_size = 4;
  int64_t accumulation_steps = 1;
  std::optional<int64_t> max_steps = 200;
  std::optional<double> epochs;
  double lr = 2.0e-5;
  double warmup_ratio = 0.03;
  Schedule schedule = Schedule::cosine;
  double min_lr_ratio = 0.0;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  std::optional<double> max_grad_norm = 1.0;
  LossNormalization loss_normalization = LossNormalization::token;
  int64_t eval_every_steps = 0;
  int64_t threads = 0;
  bool activation_checkpointing = false;
  int64_t loss_chunk_tokens = 512;
  bool tf32 = false;

  template <class V>
  void visit(V& v) {
    v("seed", seed, "seeds init, data order (seed + epoch) and NEFTune noise");
    v("micro_batch_size", micro_batch_size,
      "samples per forward/backward on each rank; x accumulation_steps x ranks (the global batch) <= training examples",
      Resume::may_change);
    v("accumulation_steps", accumulation_steps, "micro-batches per optimizer step on each rank", Resume::may_change);
    v("max_steps", max_steps, "optimizer steps to run; null = derive from epochs", Resume::may_change);
    v("epochs", epochs, "passes over the training set (used when max_steps is null; may be fractional)",
      Resume::may_change);
    v("lr", lr, "peak learning rate");
    v("warmup_ratio", warmup_ratio, "fraction of the steps with linear warmup from 0");
    v("schedule", schedule, "lr after warmup: cosine | linear | constant");
    v("min_lr_ratio", min_lr_ratio, "final lr as a fraction of lr (cosine and linear)");
    v("weight_decay", weight_decay, "AdamW decoupled weight decay (never on norms and biases)");
    v("adam_beta1", adam_beta1, "AdamW beta1");
    v("adam_beta2", adam_beta2, "AdamW beta2");
    v("adam_eps", adam_eps, "AdamW epsilon");
    v("max_grad_norm", max_grad_norm, "clip the global gradient norm to this; null or 0 = no clipping");
    v("loss_normalization", loss_normalization,
      "token: sum over real tokens / their count in the whole step | microbatch_mean: paper's mean per micro-batch / "
      "accumulation");
    v("eval_every_steps", eval_every_steps, "eval_loss every this many steps (and at the end); 0 = only at the end",
      Resume::may_change);
    v("threads", threads,
      "intra-op threads per rank; 0 = cores on this node / ranks on this node; capped at the rank's cores",
      Resume::may_change);
    v("activation_checkpointing", activation_checkpointing,
      "keep only each decoder layer's input in forward and recompute the layer in backward (less memory, ~1/3 more "
      "compute)",
      Resume::may_change);
    v("loss_chunk_tokens", loss_chunk_tokens,
      "target positions per LM-head + loss chunk: at most this many fp32 logits rows (and their gradient) are alive at "
      "once, 512 x 128256 x 4 B = 263 MB for Llama 3, and the head matmul is still large; 0 = all positions at once",
      Resume::may_change);
    v("tf32", tf32, "fp32 matmuls on NVIDIA GPUs use TF32 tensor cores (10-bit mantissa products); no effect on CPUs");
  }
};

struct DistributedConfig {
  Backend backend = Backend::auto_select;
  Sharding sharding = Sharding::full;
  DType param_dtype = DType::fp32;
  DType reduce_dtype = DType::fp32;
  bool prefetch = true;
  bool reduce_every_microbatch = true;
  double timeout_s = 1800;

  template <class V>
  void visit(V& v) {
    v("backend", backend, "auto (nccl for CUDA, mpi otherwise) | mpi | nccl");
    v("sharding", sharding,
      "full (ZeRO-3: free params after forward) | grad_op (ZeRO-2: keep until backward) | none (replicated)");
    v("param_dtype", param_dtype, "dtype of parameter all-gathers (bf16 halves the bytes)");
    v("reduce_dtype", reduce_dtype, "dtype of gradient reduce-scatters");
    v("prefetch", prefetch, "start the next unit's all-gather while the current one computes");
    v("reduce_every_microbatch", reduce_every_microbatch,
      "true: reduce-scatter grads after every micro-batch (least memory) | false: once per step (least traffic)");
    v("timeout_s", timeout_s,
      "nccl: a collective unfinished after this many seconds (a dead or stuck rank) aborts every rank; 0 = wait "
      "forever");
  }
};

struct CheckpointConfig {
  int64_t every_steps = 0;
  int64_t keep_last = 2;
  std::string resume = "auto";
  std::optional<std::string> dir;

  template <class V>
  void visit(V& v) {
    v("every_steps", every_steps, "write a sharded checkpoint every this many steps; 0 = only at the end");
    v("keep_last", keep_last, "complete checkpoints to keep; older ones are removed after a new one is complete");
    v("resume", resume, "auto (newest complete checkpoint, if any) | never | a checkpoint directory");
    v("dir", dir, "checkpoint directory; null = <output_dir>/checkpoints");
  }
};

struct LoggingConfig {
  std::string level = "info";
  bool all_ranks = false;
  Progress progress = Progress::auto_detect;
  int64_t log_every_steps = 10;

  template <class V>
  void visit(V& v) {
    v("level", level, "trace | debug | info | warn | error");
    v("all_ranks", all_ranks, "log info from every rank, not only rank 0");
    v("progress", progress, "progress bar: auto (when stdout is a terminal) | on | off");
    v("log_every_steps", log_every_steps, "a train.log line every this many steps (metrics.jsonl gets every step)");
  }
};

struct TrainConfig {
  std::string output_dir = "runs/quickstart";
  ModelConfig model;
  TokenizerConfig tokenizer;
  DataConfig data;
  NeftuneConfig neftune;
  TrainSection train;
  DistributedConfig distributed;
  CheckpointConfig checkpoint;
  LoggingConfig logging;

  template <class V>
  void visit(V& v) {
    v("output_dir", output_dir, "metrics.jsonl, train.log, config.yaml, checkpoints/ and final/ go here",
      Resume::may_change);
    v.section("model", model, "the model to fine-tune");
    v.section("tokenizer", tokenizer, "how text becomes ids");
    v.section("data", data, "instruction and conversation data");
    v.section("neftune", neftune, "noisy embeddings (arXiv 2310.05914)");
    v.section("train", train, "optimisation");
    v.section("distributed", distributed, "FSDP sharding over ranks", Resume::may_change);
    v.section("checkpoint", checkpoint, "sharded, resumable checkpoints", Resume::may_change);
    v.section("logging", logging, "logs and progress", Resume::may_change);
  }
};

// NEFTune is on when alpha is set and > 0.
inline bool neftune_enabled(const TrainConfig& c) { return c.neftune.alpha.value_or(0.0) > 0.0; }

}  // namespace neftune::config
