// The LLaMA architecture as functions over weight tensors, so the same code runs on weights held in
// memory (generate, eval) and on weights gathered unit by unit from FSDP shards (train).
// Conventions are HF's: RMSNorm, RoPE with rotate_half, GQA (query head h uses kv head h / n_rep),
// SwiGLU MLP, tied or untied LM head. Linear weights are [out, in]. The families' switches
// (LlamaConfig): q/k/v and o_proj biases, q/k RMSNorm per head before RoPE (qwen3), a sliding window
// (mistral), RoPE frequency scaling (llama3, linear).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "distributed/flat_unit.h"
#include "trainer/model/attention.h"
#include "trainer/model/llama_config.h"
#include "trainer/model/rope.h"

namespace neftune::model {

inline const char* kEmbedName = "model.embed_tokens.weight";
inline const char* kNormName = "model.norm.weight";
inline const char* kLmHeadName = "lm_head.weight";

std::string layer_prefix(int64_t layer);

struct LayerWeights {
  at::Tensor attn_norm, wq, wk, wv, wo, mlp_norm, w_gate, w_up, w_down;
  at::Tensor bq, bk, bv, bo;  // undefined where the architecture has no such bias
  at::Tensor q_norm, k_norm;  // (head_dim); undefined unless qk_norm()
  // From tensors in layer_params(c) order.
  static LayerWeights from(const LlamaConfig& c, const std::vector<at::Tensor>& t);
};

// A decoder layer's parameters relative to "model.layers.{i}.", in unit (flat buffer) order: the
// LLaMA nine, then those of the architecture's switches.
struct LayerParam {
  const char* name;
  at::Tensor LayerWeights::*field;
  std::vector<int64_t> shape;
  bool decay;  // AdamW weight decay: matrices only, never norms or biases
};
std::vector<LayerParam> layer_params(const LlamaConfig& c);

// FSDP units: the embedding, each decoder layer, the final norm + LM head (the LM head only when
// untied; a tied head reads the embedding unit).
std::vector<dist::ParamSpec> embed_unit_params(const LlamaConfig& c);
std::vector<dist::ParamSpec> layer_unit_params(const LlamaConfig& c, int64_t layer);
std::vector<dist::ParamSpec> head_unit_params(const LlamaConfig& c);
// Every tensor of an HF checkpoint of this config, in unit order.
std::vector<dist::ParamSpec> all_params(const LlamaConfig& c);

// Per-layer key/value cache for generation: (B, n_kv_heads, capacity, head_dim).
struct KvCache {
  std::vector<at::Tensor> k, v;
  int64_t len = 0;  // positions filled
};

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);
// (B, L) ids -> (B, L, d)
at::Tensor embed(const at::Tensor& table, const at::Tensor& ids);
// (B, L, d) -> (B, L, d). `pos0` is the position of x[:, 0]; `rope` must cover pos0 + L; `layer_cache`
// (k, v) is read and filled when given.
at::Tensor decoder_layer(const LlamaConfig& c, const LayerWeights& w, const at::Tensor& x, const Rope& rope,
                         int64_t pos0, at::Tensor* cache_k = nullptr, at::Tensor* cache_v = nullptr);
// Packed rows (data/packing.h): x (R, P, d); `positions` (R, P) on x's device is each token's position
// within its sample, `segments` where each sample lies. RoPE and attention are per sample.
struct PackedRows {
  at::Tensor positions;
  const std::vector<data::Segment>* segments = nullptr;
};
at::Tensor decoder_layer(const LlamaConfig& c, const LayerWeights& w, const at::Tensor& x, const Rope& rope,
                         const PackedRows& packed);
// Final norm + LM head: (..., d) -> (..., V) in the compute dtype.
at::Tensor lm_logits(const LlamaConfig& c, const at::Tensor& norm_weight, const at::Tensor& head_weight,
                     const at::Tensor& h);

// A whole model in one process: generation, evaluation, the fixture tests.
class LlamaModel {
 public:
  // Loads an HF-format directory (config.json + model.safetensors or a sharded index).
  static LlamaModel load(const std::string& dir, at::ScalarType dtype, at::Device device = at::kCPU);
  // From tensors by HF name (fp32 or any dtype; converted).
  static LlamaModel from_tensors(const LlamaConfig& c, const std::function<at::Tensor(const std::string&)>& get,
                                 at::ScalarType dtype, at::Device device);

  const LlamaConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }

  // (B, L) ids -> (B, L, V) fp32 logits. With a cache, continues from cache->len.
  at::Tensor forward(const at::Tensor& ids, KvCache* cache = nullptr) const;
  // (B, L) ids -> (B, L, d): the last decoder layer's output, before the final norm, so that a caller
  // makes logits only where it needs them (logits(), or the head weights in chunks).
  at::Tensor hidden(const at::Tensor& ids, KvCache* cache = nullptr) const;
  // The same for packed rows: ids (R, P), `packed` as for decoder_layer (positions on any device).
  at::Tensor hidden(const at::Tensor& ids, const PackedRows& packed) const;
  // Final norm + LM head of hidden states: (..., d) -> (..., V) fp32.
  at::Tensor logits(const at::Tensor& h) const;
  // (final norm weight, LM head weight): the embedding when the head is tied.
  std::pair<at::Tensor, at::Tensor> head_weights() const { return {norm_, lm_head_}; }
  KvCache new_cache(int64_t batch, int64_t capacity) const;

 private:
  LlamaConfig config_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
  at::Tensor embed_, norm_, lm_head_;
  std::vector<LayerWeights> layers_;
  mutable Rope rope_;  // grown by forward() to the longest sequence so far (a model is used by one thread)
};

}  // namespace neftune::model
