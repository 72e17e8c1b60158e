#include "trainer/model/llama.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "trainer/model/hf_checkpoint.h"

namespace neftune::model {

std::string layer_prefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

std::vector<LayerParam> layer_params(const LlamaConfig& c) {
  const int64_t d = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  using W = LayerWeights;
  std::vector<LayerParam> p = {{"input_layernorm.weight", &W::attn_norm, {d}, false},
                               {"self_attn.q_proj.weight", &W::wq, {q, d}, true},
                               {"self_attn.k_proj.weight", &W::wk, {kv, d}, true},
                               {"self_attn.v_proj.weight", &W::wv, {kv, d}, true},
                               {"self_attn.o_proj.weight", &W::wo, {d, q}, true},
                               {"post_attention_layernorm.weight", &W::mlp_norm, {d}, false},
                               {"mlp.gate_proj.weight", &W::w_gate, {f, d}, true},
                               {"mlp.up_proj.weight", &W::w_up, {f, d}, true},
                               {"mlp.down_proj.weight", &W::w_down, {d, f}, true}};
  if (c.qkv_bias()) {
    p.push_back({"self_attn.q_proj.bias", &W::bq, {q}, false});
    p.push_back({"self_attn.k_proj.bias", &W::bk, {kv}, false});
    p.push_back({"self_attn.v_proj.bias", &W::bv, {kv}, false});
  }
  if (c.o_bias()) p.push_back({"self_attn.o_proj.bias", &W::bo, {d}, false});
  if (c.qk_norm()) {
    p.push_back({"self_attn.q_norm.weight", &W::q_norm, {c.head_dim}, false});
    p.push_back({"self_attn.k_norm.weight", &W::k_norm, {c.head_dim}, false});
  }
  return p;
}

LayerWeights LayerWeights::from(const LlamaConfig& c, const std::vector<at::Tensor>& t) {
  const std::vector<LayerParam> params = layer_params(c);
  TORCH_CHECK(t.size() == params.size(), "a decoder layer of this model has ", params.size(), " tensors, not ",
              t.size());
  LayerWeights w;
  for (size_t i = 0; i < params.size(); ++i) w.*params[i].field = t[i];
  return w;
}

std::vector<dist::ParamSpec> embed_unit_params(const LlamaConfig& c) {
  return {{kEmbedName, {c.vocab_size, c.hidden_size}, true}};
}

std::vector<dist::ParamSpec> layer_unit_params(const LlamaConfig& c, int64_t layer) {
  const std::string prefix = layer_prefix(layer);
  std::vector<dist::ParamSpec> out;
  for (const LayerParam& p : layer_params(c)) out.push_back({prefix + p.name, p.shape, p.decay});
  return out;
}

std::vector<dist::ParamSpec> head_unit_params(const LlamaConfig& c) {
  std::vector<dist::ParamSpec> out{{kNormName, {c.hidden_size}, false}};
  if (!c.tie_word_embeddings) out.push_back({kLmHeadName, {c.vocab_size, c.hidden_size}, true});
  return out;
}

std::vector<dist::ParamSpec> all_params(const LlamaConfig& c) {
  std::vector<dist::ParamSpec> out = embed_unit_params(c);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    auto l = layer_unit_params(c, i);
    out.insert(out.end(), l.begin(), l.end());
  }
  auto h = head_unit_params(c);
  out.insert(out.end(), h.begin(), h.end());
  return out;
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (x.scalar_type() == at::kFloat) return x * at::rsqrt(x.pow(2).mean(-1, true) + eps) * weight;
  const at::Tensor xf = x.to(at::kFloat);
  return weight * (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

at::Tensor embed(const at::Tensor& table, const at::Tensor& ids) { return at::embedding(table, ids); }

namespace {

// One decoder layer; RoPE and attention at positions [pos0, pos0 + L) (with the KV cache when given),
// or per sample of packed rows.
at::Tensor layer_forward(const LlamaConfig& c, const LayerWeights& w, const at::Tensor& x, const Rope& rope,
                         int64_t pos0, at::Tensor* cache_k, at::Tensor* cache_v, const PackedRows* packed) {
  const int64_t B = x.size(0), L = x.size(1), H = c.num_attention_heads, KV = c.num_key_value_heads, hd = c.head_dim;
  const at::Tensor h = rms_norm(x, w.attn_norm, c.rms_norm_eps);
  at::Tensor q = at::linear(h, w.wq, w.bq).view({B, L, H, hd});                   // (B,L,H,hd)
  at::Tensor k = at::linear(h, w.wk, w.bk).view({B, L, KV, hd});                  // (B,L,KV,hd)
  at::Tensor v = at::linear(h, w.wv, w.bv).view({B, L, KV, hd}).transpose(1, 2);  // (B,KV,L,hd)
  if (c.qk_norm()) {  // qwen3: each head normalised over head_dim, before RoPE
    q = rms_norm(q, w.q_norm, c.rms_norm_eps);
    k = rms_norm(k, w.k_norm, c.rms_norm_eps);
  }
  q = packed ? apply_rope(q.transpose(1, 2), rope, packed->positions) : apply_rope(q.transpose(1, 2), rope, pos0);
  k = packed ? apply_rope(k.transpose(1, 2), rope, packed->positions) : apply_rope(k.transpose(1, 2), rope, pos0);
  if (cache_k) {
    cache_k->narrow(2, pos0, L).copy_(k);
    cache_v->narrow(2, pos0, L).copy_(v);
    k = cache_k->narrow(2, 0, pos0 + L);
    v = cache_v->narrow(2, 0, pos0 + L);
  }
  const int64_t T = k.size(2);
  if (H != KV) {  // GQA: repeat each kv head n_rep times (HF repeat_kv order)
    k = k.unsqueeze(2).expand({B, KV, H / KV, T, hd}).reshape({B, H, T, hd});
    v = v.unsqueeze(2).expand({B, KV, H / KV, T, hd}).reshape({B, H, T, hd});
  }
  const at::Tensor a = packed ? packed_attention(q, k, v, *packed->segments, c.attention_window())
                              : attention(q, k, v, pos0, c.attention_window());
  const at::Tensor attn = a.transpose(1, 2).reshape({B, L, H * hd});
  const at::Tensor x2 = x + at::linear(attn, w.wo, w.bo);
  const at::Tensor m = rms_norm(x2, w.mlp_norm, c.rms_norm_eps);
  return x2 + at::linear(at::silu(at::linear(m, w.w_gate)) * at::linear(m, w.w_up), w.w_down);
}

}  // namespace

at::Tensor decoder_layer(const LlamaConfig& c, const LayerWeights& w, const at::Tensor& x, const Rope& rope,
                         int64_t pos0, at::Tensor* cache_k, at::Tensor* cache_v) {
  return layer_forward(c, w, x, rope, pos0, cache_k, cache_v, nullptr);
}

at::Tensor decoder_layer(const LlamaConfig& c, const LayerWeights& w, const at::Tensor& x, const Rope& rope,
                         const PackedRows& packed) {
  TORCH_CHECK(packed.positions.defined() && packed.segments, "decoder_layer: packed rows need positions and segments");
  return layer_forward(c, w, x, rope, 0, nullptr, nullptr, &packed);
}

at::Tensor lm_logits(const LlamaConfig& c, const at::Tensor& norm_weight, const at::Tensor& head_weight,
                     const at::Tensor& h) {
  return at::linear(rms_norm(h, norm_weight, c.rms_norm_eps), head_weight);
}

LlamaModel LlamaModel::load(const std::string& dir, at::ScalarType dtype, at::Device device) {
  const HfCheckpoint ckpt(dir);
  return from_tensors(
      ckpt.config(), [&](const std::string& name) { return ckpt.load(name); }, dtype, device);
}

LlamaModel LlamaModel::from_tensors(const LlamaConfig& c, const std::function<at::Tensor(const std::string&)>& get,
                                    at::ScalarType dtype, at::Device device) {
  LlamaModel m;
  m.config_ = c;
  m.dtype_ = dtype;
  m.device_ = device;
  auto load = [&](const std::string& name) { return get(name).to(device, dtype).contiguous(); };
  m.embed_ = load(kEmbedName);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    std::vector<at::Tensor> t;
    for (const LayerParam& p : layer_params(c)) t.push_back(load(layer_prefix(i) + p.name));
    m.layers_.push_back(LayerWeights::from(c, t));
  }
  m.norm_ = load(kNormName);
  m.lm_head_ = c.tie_word_embeddings ? m.embed_ : load(kLmHeadName);
  m.rope_ = Rope(c, device);
  return m;
}

KvCache LlamaModel::new_cache(int64_t batch, int64_t capacity) const {
  KvCache cache;
  const auto opts = at::TensorOptions().dtype(dtype_).device(device_);
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    cache.k.push_back(at::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, opts));
    cache.v.push_back(at::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, opts));
  }
  return cache;
}

at::Tensor LlamaModel::forward(const at::Tensor& ids, KvCache* cache) const { return logits(hidden(ids, cache)); }

at::Tensor LlamaModel::hidden(const at::Tensor& ids, KvCache* cache) const {
  at::NoGradGuard no_grad;
  const int64_t pos0 = cache ? cache->len : 0;
  TORCH_CHECK(pos0 + ids.size(1) <= config_.max_position_embeddings, "sequence of ", pos0 + ids.size(1),
              " tokens exceeds max_position_embeddings ", config_.max_position_embeddings);
  if (cache) {
    TORCH_CHECK(pos0 + ids.size(1) <= cache->k[0].size(2), "KV cache capacity exceeded");
  }
  rope_.reserve(pos0 + ids.size(1));
  at::Tensor x = embed(embed_, ids.to(device_));
  for (size_t i = 0; i < layers_.size(); ++i) {
    x = decoder_layer(config_, layers_[i], x, rope_, pos0, cache ? &cache->k[i] : nullptr,
                      cache ? &cache->v[i] : nullptr);
  }
  if (cache) cache->len += ids.size(1);
  return x;
}

at::Tensor LlamaModel::hidden(const at::Tensor& ids, const PackedRows& packed) const {
  at::NoGradGuard no_grad;
  TORCH_CHECK(packed.segments, "LlamaModel::hidden: packed rows need their segments");
  int64_t longest = 1;
  for (const data::Segment& s : *packed.segments) longest = std::max(longest, s.length);
  TORCH_CHECK(longest <= config_.max_position_embeddings, "a sample of ", longest,
              " tokens exceeds max_position_embeddings ", config_.max_position_embeddings);
  rope_.reserve(longest);
  const PackedRows here{packed.positions.to(device_), packed.segments};
  at::Tensor x = embed(embed_, ids.to(device_));
  for (const LayerWeights& w : layers_) x = decoder_layer(config_, w, x, rope_, here);
  return x;
}

at::Tensor LlamaModel::logits(const at::Tensor& h) const {
  at::NoGradGuard no_grad;
  return lm_logits(config_, norm_, lm_head_, h).to(at::kFloat);
}

}  // namespace neftune::model
