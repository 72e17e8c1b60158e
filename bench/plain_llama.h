// A plain LibTorch LLaMA training loop for the benchmarks: torch::nn modules, full-sequence logits,
// torch::optim::AdamW, clip_grad_norm_. No sharding, no noise, no data pipeline. It is the baseline the
// trainer's throughput is compared with, so it is written the way a LibTorch user would write it.
#pragma once

#include <torch/torch.h>

#include <cmath>

namespace neftune::bench {

struct PlainConfig {
  int64_t vocab = 259, dim = 512, layers = 8, heads = 8, kv_heads = 8, hidden = 1376, max_len = 512;
  double rope_theta = 10000.0, eps = 1e-5;
};

struct RMSNormImpl : torch::nn::Module {
  explicit RMSNormImpl(int64_t d, double eps) : eps(eps) { weight = register_parameter("weight", torch::ones({d})); }
  torch::Tensor forward(const torch::Tensor& x) { return x * torch::rsqrt(x.pow(2).mean(-1, true) + eps) * weight; }
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

struct BlockImpl : torch::nn::Module {
  BlockImpl(const PlainConfig& c) : c(c) {
    const int64_t hd = c.dim / c.heads;
    n1 = register_module("n1", RMSNorm(c.dim, c.eps));
    n2 = register_module("n2", RMSNorm(c.dim, c.eps));
    q = register_module("q", torch::nn::Linear(torch::nn::LinearOptions(c.dim, c.heads * hd).bias(false)));
    k = register_module("k", torch::nn::Linear(torch::nn::LinearOptions(c.dim, c.kv_heads * hd).bias(false)));
    v = register_module("v", torch::nn::Linear(torch::nn::LinearOptions(c.dim, c.kv_heads * hd).bias(false)));
    o = register_module("o", torch::nn::Linear(torch::nn::LinearOptions(c.heads * hd, c.dim).bias(false)));
    gate = register_module("gate", torch::nn::Linear(torch::nn::LinearOptions(c.dim, c.hidden).bias(false)));
    up = register_module("up", torch::nn::Linear(torch::nn::LinearOptions(c.dim, c.hidden).bias(false)));
    down = register_module("down", torch::nn::Linear(torch::nn::LinearOptions(c.hidden, c.dim).bias(false)));
  }
  static torch::Tensor rot(const torch::Tensor& x) {
    const int64_t h = x.size(-1) / 2;
    return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask) {
    const int64_t B = x.size(0), L = x.size(1), hd = c.dim / c.heads, rep = c.heads / c.kv_heads;
    auto h = n1(x);
    auto qq = q(h).view({B, L, c.heads, hd}).transpose(1, 2);
    auto kk = k(h).view({B, L, c.kv_heads, hd}).transpose(1, 2);
    auto vv = v(h).view({B, L, c.kv_heads, hd}).transpose(1, 2);
    qq = qq * cos + rot(qq) * sin;
    kk = kk * cos + rot(kk) * sin;
    if (rep > 1) {
      kk = kk.repeat_interleave(rep, 1);
      vv = vv.repeat_interleave(rep, 1);
    }
    auto att = torch::softmax(torch::matmul(qq, kk.transpose(-2, -1)) / std::sqrt(double(hd)) + mask, -1);
    auto a = torch::matmul(att, vv).transpose(1, 2).reshape({B, L, c.dim});
    auto x2 = x + o(a);
    auto m = n2(x2);
    return x2 + down(torch::silu(gate(m)) * up(m));
  }
  PlainConfig c;
  RMSNorm n1{nullptr}, n2{nullptr};
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr}, gate{nullptr}, up{nullptr}, down{nullptr};
};
TORCH_MODULE(Block);

struct PlainLlamaImpl : torch::nn::Module {
  explicit PlainLlamaImpl(const PlainConfig& c) : c(c) {
    emb = register_module("emb", torch::nn::Embedding(c.vocab, c.dim));
    for (int64_t i = 0; i < c.layers; ++i) blocks.push_back(register_module("b" + std::to_string(i), Block(c)));
    norm = register_module("norm", RMSNorm(c.dim, c.eps));
    const int64_t hd = c.dim / c.heads;
    auto inv = 1.0 / torch::pow(c.rope_theta, torch::arange(0, hd, 2).to(torch::kFloat) / hd);
    auto f = torch::outer(torch::arange(c.max_len).to(torch::kFloat), inv);
    auto e = torch::cat({f, f}, -1);
    cos_ = e.cos();
    sin_ = e.sin();
  }
  // Tied head, logits for every position: (B, L, V).
  torch::Tensor forward(const torch::Tensor& ids) {
    const int64_t L = ids.size(1);
    auto x = emb(ids);
    const auto dtype = x.scalar_type();
    auto cos = cos_.narrow(0, 0, L).to(dtype), sin = sin_.narrow(0, 0, L).to(dtype);
    auto mask = torch::full({L, L}, -INFINITY, x.options()).triu(1);
    for (auto& b : blocks) x = b->forward(x, cos, sin, mask);
    return torch::linear(norm(x), emb->weight);
  }
  PlainConfig c;
  torch::nn::Embedding emb{nullptr};
  std::vector<Block> blocks;
  RMSNorm norm{nullptr};
  torch::Tensor cos_, sin_;
};
TORCH_MODULE(PlainLlama);

}  // namespace neftune::bench
