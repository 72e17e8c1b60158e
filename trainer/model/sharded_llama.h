// LLaMA trained FSDP-style: one FlatUnit per embedding, decoder layer (its biases and q/k norms
// included, where the architecture has them) and final norm + LM head. Each unit has its own small
// autograd graph (its input is a detached leaf), so backward runs unit by unit in reverse and the
// gather / reduce-scatter / free of every unit happens exactly where FSDP puts it:
//
//   forward:  gather unit (prefetch next) -> run -> free (sharding: full)
//   backward: re-gather (prefetch previous) -> backward -> reduce-scatter grads -> free
//
// The embedding's backward needs no weights (only the token ids), so it is never re-gathered. With
// activation checkpointing a decoder layer runs without a graph in forward, and again with one right
// after its re-gather in backward ("-> recompute -> backward").
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "config/enums.h"
#include "distributed/flat_unit.h"
#include "trainer/data/batch.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"

namespace neftune::model {

struct MicroResult {
  at::Tensor loss_sum;    // () fp32 on the model's device: sum of token cross-entropies (before any
                          // scaling); read it with .item() only when needed (that waits for the device)
  int64_t n_targets = 0;  // tokens with a loss
};

class ShardedLlama {
 public:
  ShardedLlama(const LlamaConfig& config, dist::Communicator& comm, const dist::ShardingOptions& options,
               bool prefetch);

  const LlamaConfig& config() const { return config_; }
  const std::vector<dist::FlatUnit*>& units() const { return unit_ptrs_; }
  const dist::ShardingOptions& options() const { return options_; }

  // HF's init: normal(0, initializer_range) for matrices and embeddings, ones for norms, zeros for
  // biases. Every tensor
  // is drawn from a generator keyed by (seed, its index), so the model is the same at any world size.
  void init_random(uint64_t seed);
  void load(const HfCheckpoint& checkpoint);

  // Forward and backward of one micro-batch; the backward is of loss_sum * loss_scale. `embed_hook`
  // (NEFTune) transforms the embeddings before the first layer. With `reduce` false the gradients stay
  // unsharded for the next micro-batch (distributed.reduce_every_microbatch: false).
  MicroResult forward_backward(const data::Batch& batch, double loss_scale, bool reduce,
                               const std::function<at::Tensor(const at::Tensor&)>& embed_hook);
  // Activation checkpointing: forward keeps only each decoder layer's input, and backward recomputes
  // the layer (after its re-gather) before back-propagating through it: about one more forward of the
  // layers per micro-batch. Same kernels on the same inputs, so on the CPU the same gradients bit for
  // bit (tested); where a GPU library picks its attention kernel by whether gradients are needed, the
  // two forwards may differ by rounding.
  void set_activation_checkpointing(bool on) { checkpointing_ = on; }
  // The LM head and the loss run on at most this many target positions at a time (0 = all at once):
  // each chunk's (n, vocab) fp32 logits go forward, into the loss and, in training, backward before the
  // next chunk's are made. The same loss and gradients up to the order of the sums (tested).
  void set_loss_chunk_tokens(int64_t n) { loss_chunk_tokens_ = n; }
  // Loss without gradients (eval).
  MicroResult evaluate(const data::Batch& batch);
  void zero_grads();

  // Writes the full model in HF format (collective; rank 0 writes when `write`).
  void export_hf(const std::string& dir, const HfWriteOptions& options, bool write);
  // The full fp32 weights by HF name, gathered unit by unit (collective), e.g. for tests.
  void for_each_full_param(const std::function<void(const std::string&, const at::Tensor&)>& fn);

  int64_t comm_bytes() const;
  void reset_comm_bytes();

 private:
  dist::FlatUnit& unit(size_t i) { return *units_[i]; }
  size_t head_index() const { return units_.size() - 1; }
  void prefetch(size_t i);
  // Decoder layer unit u on x (B, L, d), on its gathered weights (part of the graph when `grad`); per
  // sample when `packed` has segments.
  at::Tensor layer(size_t u, const at::Tensor& x, bool grad, const PackedRows& packed);
  // Grows the RoPE tables to the batch's positions; for a packed batch, its positions on the device.
  PackedRows prepare_positions(const data::Batch& batch);
  // Cross-entropy summed over the rows of x (B, L, d) that have a target (Batch::target_rows/_ids),
  // in chunks of loss_chunk_tokens_ rows. With `backward_scale` it also back-propagates the sum times
  // it, chunk by chunk, into x's grad and the head's (and a tied embedding's) weights. The sum comes
  // back detached.
  at::Tensor head_loss(const at::Tensor& x, const data::Batch& batch, std::optional<double> backward_scale);

  LlamaConfig config_;
  dist::Communicator& comm_;
  dist::ShardingOptions options_;
  bool prefetch_;
  bool checkpointing_ = false;
  int64_t loss_chunk_tokens_ = 0;
  Rope rope_;
  std::vector<std::unique_ptr<dist::FlatUnit>> units_;
  std::vector<dist::FlatUnit*> unit_ptrs_;
};

}  // namespace neftune::model
