#include "trainer/model/sharded_llama.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>

#include "trainer/data/rng.h"
#include "trainer/model/chunked_head.h"

namespace neftune::model {
namespace {
bool is_bias(const std::string& name) {
  const std::string suffix = ".bias";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

ShardedLlama::ShardedLlama(const LlamaConfig& config, dist::Communicator& comm, const dist::ShardingOptions& options,
                           bool prefetch)
    : config_(config), comm_(comm), options_(options), prefetch_(prefetch) {
  rope_ = Rope(config_, options_.device);
  const int64_t n = comm_.size();
  auto add = [&](std::string name, std::vector<dist::ParamSpec> params) {
    units_.push_back(std::make_unique<dist::FlatUnit>(dist::UnitLayout::make(std::move(name), std::move(params), n),
                                                      comm_, options_));
  };
  add("embed", embed_unit_params(config_));
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l)
    add("layers." + std::to_string(l), layer_unit_params(config_, l));
  add("head", head_unit_params(config_));
  for (auto& u : units_) unit_ptrs_.push_back(u.get());
}

void ShardedLlama::init_random(uint64_t seed) {
  // Values come in fixed chunks, each from a generator keyed by (seed, tensor index, chunk index): the
  // model is the same at any world size, and a rank only ever materialises the chunks it stores.
  constexpr int64_t kChunk = 1 << 16;
  uint64_t index = 0;
  for (auto& u : units_) {
    for (const auto& p : u->layout().params) {
      const dist::FlatUnit::Slice sl = u->local_slice(p.name);
      at::Tensor mine = at::empty({sl.count}, at::kFloat);
      if (p.shape.size() == 1) {
        mine.fill_(is_bias(p.name) ? 0.0 : 1.0);  // biases 0, norm weights 1
      } else {
        for (int64_t c = sl.begin / kChunk; c * kChunk < sl.begin + sl.count; ++c) {
          const int64_t c_begin = c * kChunk, c_len = std::min(kChunk, p.numel() - c_begin);
          at::Generator gen =
              at::detail::createCPUGenerator(data::mix_key({seed, index, static_cast<uint64_t>(c), 0x1A17}));
          const at::Tensor chunk = at::empty({c_len}, at::kFloat).normal_(0.0, config_.initializer_range, gen);
          const int64_t lo = std::max(c_begin, sl.begin), hi = std::min(c_begin + c_len, sl.begin + sl.count);
          mine.narrow(0, lo - sl.begin, hi - lo).copy_(chunk.narrow(0, lo - c_begin, hi - lo));
        }
      }
      u->set_local_slice(p.name, mine);
      ++index;
    }
  }
}

void ShardedLlama::load(const HfCheckpoint& checkpoint) {
  for (auto& u : units_) {
    for (const auto& p : u->layout().params) {
      const dist::FlatUnit::Slice sl = u->local_slice(p.name);
      u->set_local_slice(p.name, checkpoint.load_range(p.name, sl.begin, sl.count).to(at::kFloat));
    }
  }
}

at::Tensor ShardedLlama::layer(size_t u, const at::Tensor& x, bool grad, const PackedRows& packed) {
  const LayerWeights w = LayerWeights::from(config_, unit(u).views(grad));
  return packed.segments ? decoder_layer(config_, w, x, rope_, packed) : decoder_layer(config_, w, x, rope_, 0);
}

PackedRows ShardedLlama::prepare_positions(const data::Batch& batch) {
  if (!batch.packed()) {
    rope_.reserve(batch.input_ids.size(1));
    return {};
  }
  int64_t longest = 1;
  for (const int64_t l : batch.lengths) longest = std::max(longest, l);
  rope_.reserve(longest);
  return {data::to_device(batch.positions, options_.device), &batch.segments};
}

void ShardedLlama::prefetch(size_t i) {
  if (prefetch_ && i < units_.size()) units_[i]->start_gather();
}

at::Tensor ShardedLlama::head_loss(const at::Tensor& x, const data::Batch& batch,
                                   std::optional<double> backward_scale) {
  // Only positions with a target go through the LM head: prompt and padding positions cost nothing.
  // The rows come from the host batch: no nonzero() on the device, which would wait for it.
  const bool grad = backward_scale.has_value();
  const HeadWeights weights = [&] {
    const std::vector<at::Tensor> hw = unit(head_index()).views(grad);
    return std::make_pair(hw[0], config_.tie_word_embeddings ? unit(0).views(grad)[0] : hw[1]);
  };
  return chunked_head_loss(config_, weights, x.reshape({-1, config_.hidden_size}),
                           data::to_device(batch.target_rows, options_.device),
                           data::to_device(batch.target_ids, options_.device), loss_chunk_tokens_, backward_scale);
}

MicroResult ShardedLlama::forward_backward(const data::Batch& batch, double loss_scale, bool reduce,
                                           const std::function<at::Tensor(const at::Tensor&)>& embed_hook) {
  const bool full = options_.mode == config::Sharding::full;
  const size_t head = head_index();
  const at::Tensor ids = data::to_device(batch.input_ids, options_.device);
  const PackedRows packed = prepare_positions(batch);

  // ---- forward ----
  unit(0).finish_gather();
  prefetch(1);
  at::Tensor x0 = embed(unit(0).views(true)[0], ids);  // (B, L, d)
  if (embed_hook) x0 = embed_hook(x0);
  if (full) unit(0).release();

  std::vector<at::Tensor> inputs(units_.size()), outputs(units_.size());
  at::Tensor x = x0;
  for (size_t u = 1; u < head; ++u) {
    unit(u).finish_gather();
    prefetch(u + 1);
    inputs[u] = x.detach().requires_grad_(true);
    if (checkpointing_) {
      // No graph: the layer's activations die here; backward runs it again from inputs[u].
      at::NoGradGuard no_grad;
      x = layer(u, inputs[u], false, packed);
    } else {
      x = outputs[u] = layer(u, inputs[u], true, packed);
    }
    if (full) unit(u).release();
  }
  unit(head).finish_gather();
  if (config_.tie_word_embeddings) unit(0).gather();
  const at::Tensor head_in = x.detach().requires_grad_(true);
  // The head's forward and backward run together, chunk by chunk (head_loss): the previous layer's
  // gather starts first, under the head's compute.
  if (head > 1) prefetch(head - 1);
  const at::Tensor loss_sum = head_loss(head_in, batch, loss_scale);

  // ---- backward ----
  // With NCCL a unit's reduce-scatter overlaps the previous unit's backward (at most one in flight, so
  // one full-size gradient waits on the network at a time). MPI makes progress only inside MPI calls,
  // so there each reduce completes at once and its buffer is freed before the next backward.
  const bool overlap = comm_.progresses_in_background();
  dist::FlatUnit* in_flight = nullptr;
  auto reduce_and_free = [&](dist::FlatUnit& u) {
    u.reduce_grads(reduce);
    if (in_flight) in_flight->finish_reduce();
    in_flight = &u;
    if (!overlap) {
      u.finish_reduce();
      in_flight = nullptr;
    }
    u.release();
  };
  reduce_and_free(unit(head));
  if (config_.tie_word_embeddings && full) unit(0).release();  // its gradient stays, its weights go
  at::Tensor g = head_in.grad();
  for (size_t u = head - 1; u >= 1; --u) {
    unit(u).finish_gather();
    if (u > 1) prefetch(u - 1);
    // Recomputed with grad on the re-gathered weights (only decoder layers: the embedding and its
    // NEFTune noise never run twice).
    if (checkpointing_) outputs[u] = layer(u, inputs[u], true, packed);
    torch::autograd::backward({outputs[u]}, {g});
    g = inputs[u].grad();
    inputs[u] = outputs[u] = at::Tensor();
    reduce_and_free(unit(u));
  }
  torch::autograd::backward({x0}, {g});
  reduce_and_free(unit(0));
  if (in_flight) in_flight->finish_reduce();
  return {loss_sum, batch.n_targets};
}

MicroResult ShardedLlama::evaluate(const data::Batch& batch) {
  at::NoGradGuard no_grad;
  const size_t head = head_index();
  const at::Tensor ids = data::to_device(batch.input_ids, options_.device);
  const PackedRows packed = prepare_positions(batch);
  unit(0).gather();
  prefetch(1);
  at::Tensor x = embed(unit(0).views(false)[0], ids);
  if (!config_.tie_word_embeddings) unit(0).release();
  for (size_t u = 1; u < head; ++u) {
    unit(u).finish_gather();
    prefetch(u + 1);
    x = layer(u, x, false, packed);
    unit(u).release();
  }
  unit(head).finish_gather();
  if (config_.tie_word_embeddings) unit(0).gather();
  const at::Tensor loss_sum = head_loss(x, batch, std::nullopt);
  unit(head).release();
  unit(0).release();
  return {loss_sum, batch.n_targets};
}

void ShardedLlama::zero_grads() {
  for (auto& u : units_) u->zero_grads();
}

void ShardedLlama::for_each_full_param(const std::function<void(const std::string&, const at::Tensor&)>& fn) {
  for (auto& u : units_) {
    const at::Tensor flat = u->gather_full_fp32();
    for (size_t i = 0; i < u->layout().params.size(); ++i) fn(u->layout().params[i].name, u->param_of(flat, i));
  }
}

void ShardedLlama::export_hf(const std::string& dir, const HfWriteOptions& options, bool write) {
  // all_params() order is unit order: gather a unit when its first tensor is asked for.
  int current = -1;
  at::Tensor flat;
  auto get = [&](const std::string& name) -> at::Tensor {
    for (size_t u = 0; u < units_.size(); ++u) {
      const int i = units_[u]->layout().index_of(name);
      if (i < 0) continue;
      if (static_cast<int>(u) != current) {
        flat = units_[u]->gather_full_fp32();
        current = static_cast<int>(u);
      }
      return units_[u]->param_of(flat, static_cast<size_t>(i));
    }
    throw std::logic_error("export: no unit holds " + name);
  };
  write_hf_model(dir, config_, get, options, write);
}

int64_t ShardedLlama::comm_bytes() const {
  int64_t total = 0;
  for (const auto& u : units_) total += u->comm_bytes();
  return total;
}

void ShardedLlama::reset_comm_bytes() {
  for (auto& u : units_) u->reset_comm_bytes();
}

}  // namespace neftune::model
