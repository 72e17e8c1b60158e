#include "trainer/model/llama.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "trainer/model/hf_checkpoint.h"

namespace neftune::model {

std::string layer_prefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

LayerWeights LayerWeights::from(const std::vector<at::Tensor>& t) {
  TORCH_CHECK(t.size() == kLayerParams.size(), "a decoder layer has ", kLayerParams.size(), " tensors");
  return {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8]};
}

std::vector<dist::ParamSpec> embed_unit_params(const LlamaConfig& c) {
  return {{kEmbedName, {c.vocab_size, c.hidden_size}, true}};
}

std::vector<dist::ParamSpec> layer_unit_params(const LlamaConfig& c, int64_t layer) {
  const std::string p = layer_prefix(layer);
  const int64_t d = c.hidden_size, f = c.intermediate_size;
  return {{p + kLayerParams[0], {d}, false},           {p + kLayerParams[1], {c.q_dim(), d}, true},
          {p + kLayerParams[2], {c.kv_dim(), d}, true}, {p + kLayerParams[3], {c.kv_dim(), d}, true},
          {p + kLayerParams[4], {d, c.q_dim()}, true},  {p + kLayerParams[5], {d}, false},
          {p + kLayerParams[6], {f, d}, true},          {p + kLayerParams[7], {f, d}, true},
          {p + kLayerParams[8], {d, f}, true}};
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

Rope::Rope(const LlamaConfig& c, at::Device device)
    : head_dim_(c.head_dim), max_positions_(c.max_position_embeddings), theta_(c.rope_theta), device_(device) {}

void Rope::reserve(int64_t len) {
  TORCH_CHECK(len <= max_positions_, "RoPE: a sequence of ", len, " positions exceeds max_position_embeddings ",
              max_positions_);
  if (len <= length()) return;
  const int64_t hd = head_dim_;
  // inv_freq[j] = 1 / theta^(2j / hd), computed in fp32 like HF.
  const at::Tensor exponent = at::arange(0, hd, 2, at::kLong).to(at::kFloat) / static_cast<float>(hd);
  const at::Tensor inv_freq = 1.0 / at::pow(static_cast<float>(theta_), exponent);  // (hd/2)
  std::vector<at::Tensor> cos_parts, sin_parts;
  if (cos.defined()) {
    cos_parts.push_back(cos);
    sin_parts.push_back(sin);
  }
  // Whole blocks: the elementwise kernels see the same shapes whatever the length, so they round alike.
  for (int64_t p0 = length(); p0 < len; p0 += kBlock) {
    const at::Tensor pos = at::arange(p0, p0 + kBlock, at::kLong).to(at::kFloat);  // (kBlock)
    const at::Tensor freqs = at::outer(pos, inv_freq);                             // (kBlock, hd/2)
    const at::Tensor emb = at::cat({freqs, freqs}, -1);                            // (kBlock, hd)
    cos_parts.push_back(emb.cos().to(device_));
    sin_parts.push_back(emb.sin().to(device_));
  }
  cos = at::cat(cos_parts, 0);
  sin = at::cat(sin_parts, 0);
  if (cos.size(0) > max_positions_) {  // never past the model's limit
    cos = cos.narrow(0, 0, max_positions_);
    sin = sin.narrow(0, 0, max_positions_);
  }
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (x.scalar_type() == at::kFloat) return x * at::rsqrt(x.pow(2).mean(-1, true) + eps) * weight;
  const at::Tensor xf = x.to(at::kFloat);
  return weight * (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

at::Tensor embed(const at::Tensor& table, const at::Tensor& ids) { return at::embedding(table, ids); }

const char* attention_path() {
#if TORCH_VERSION_MAJOR >= 2
  return "sdpa";
#else
  return "explicit";
#endif
}

namespace {

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

// Scaled dot-product attention with a causal mask aligned to absolute positions: query i (at
// position pos0 + i) sees keys 0..pos0+i. q (B,H,L,hd), k/v (B,H,T,hd) with T = pos0 + L.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t pos0) {
  const int64_t L = q.size(2), T = k.size(2);
#if TORCH_VERSION_MAJOR >= 2
  if (pos0 == 0 && L == T) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
  if (L == 1) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false);
#endif
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * scale;  // (B,H,L,T)
  if (L > 1) {
    const at::Tensor mask =
        at::full({L, T}, -std::numeric_limits<float>::infinity(), scores.options()).triu(pos0 + 1);
    scores = scores + mask;
  }
  // HF computes softmax(scores, dtype=fp32).to(dtype). LibTorch's softmax kernels accumulate in fp32 for
  // bf16/fp16 inputs and round the output once, which gives the same probabilities (a test checks it)
  // without materialising (B,H,L,T) in fp32 forward and backward.
  const at::Tensor probs = at::softmax(scores, -1);
  return at::matmul(probs, v);  // (B,H,L,hd)
}

}  // namespace

at::Tensor decoder_layer(const LlamaConfig& c, const LayerWeights& w, const at::Tensor& x, const Rope& rope,
                         int64_t pos0, at::Tensor* cache_k, at::Tensor* cache_v) {
  const int64_t B = x.size(0), L = x.size(1), H = c.num_attention_heads, KV = c.num_key_value_heads,
                hd = c.head_dim;
  const at::Tensor h = rms_norm(x, w.attn_norm, c.rms_norm_eps);
  at::Tensor q = at::linear(h, w.wq).view({B, L, H, hd}).transpose(1, 2);   // (B,H,L,hd)
  at::Tensor k = at::linear(h, w.wk).view({B, L, KV, hd}).transpose(1, 2);  // (B,KV,L,hd)
  at::Tensor v = at::linear(h, w.wv).view({B, L, KV, hd}).transpose(1, 2);  // (B,KV,L,hd)
  TORCH_CHECK(pos0 + L <= rope.length(), "RoPE tables cover ", rope.length(), " positions, not ", pos0 + L,
              " (Rope::reserve first)");
  const at::Tensor cos = rope.cos.narrow(0, pos0, L).to(x.scalar_type());   // (L,hd)
  const at::Tensor sin = rope.sin.narrow(0, pos0, L).to(x.scalar_type());
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
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
  const at::Tensor attn = attention(q, k, v, pos0).transpose(1, 2).reshape({B, L, H * hd});
  const at::Tensor x2 = x + at::linear(attn, w.wo);
  const at::Tensor m = rms_norm(x2, w.mlp_norm, c.rms_norm_eps);
  return x2 + at::linear(at::silu(at::linear(m, w.w_gate)) * at::linear(m, w.w_up), w.w_down);
}

at::Tensor lm_logits(const LlamaConfig& c, const at::Tensor& norm_weight, const at::Tensor& head_weight,
                     const at::Tensor& h) {
  return at::linear(rms_norm(h, norm_weight, c.rms_norm_eps), head_weight);
}

LlamaModel LlamaModel::load(const std::string& dir, at::ScalarType dtype, at::Device device) {
  const HfCheckpoint ckpt(dir);
  return from_tensors(ckpt.config(), [&](const std::string& name) { return ckpt.load(name); }, dtype, device);
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
    for (const char* p : kLayerParams) t.push_back(load(layer_prefix(i) + p));
    m.layers_.push_back(LayerWeights::from(t));
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

at::Tensor LlamaModel::forward(const at::Tensor& ids, KvCache* cache) const {
  at::NoGradGuard no_grad;
  const int64_t pos0 = cache ? cache->len : 0;
  TORCH_CHECK(pos0 + ids.size(1) <= config_.max_position_embeddings, "sequence of ", pos0 + ids.size(1),
              " tokens exceeds max_position_embeddings ", config_.max_position_embeddings);
  if (cache) TORCH_CHECK(pos0 + ids.size(1) <= cache->k[0].size(2), "KV cache capacity exceeded");
  rope_.reserve(pos0 + ids.size(1));
  at::Tensor x = embed(embed_, ids.to(device_));
  for (size_t i = 0; i < layers_.size(); ++i)
    x = decoder_layer(config_, layers_[i], x, rope_, pos0, cache ? &cache->k[i] : nullptr,
                      cache ? &cache->v[i] : nullptr);
  if (cache) cache->len += ids.size(1);
  return lm_logits(config_, norm_, lm_head_, x).to(at::kFloat);
}

}  // namespace neftune::model
