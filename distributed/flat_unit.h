// A FSDP unit: a group of parameters flattened into one fp32 buffer, padded to a multiple of the world
// size; rank r owns slice r (its shard). The protocol for one use of the unit:
//
//   start_gather() / finish_gather()   all-gather the shards into the full buffer (param_dtype on the
//                                       wire, compute dtype in memory)
//   views(true)                         parameter tensors that view the full buffer; autograd puts their
//                                       gradients into one flat gradient of the full buffer
//   release()                           free the full buffer's memory (sharding: full); the views keep
//                                       their metadata, so a later re-gather refills the same storage
//   reduce_grads(last)                  reduce-scatter the flat gradient into this rank's fp32 grad shard
//
// sharding: none keeps a replicated copy instead: gathers are no-ops and gradients are all-reduced.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "config/enums.h"
#include "distributed/communicator.h"

namespace neftune::dist {

struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
  bool decay = true;  // AdamW weight decay applies (false for norms and biases)
  int64_t numel() const;
};

// Indices [begin, end) of a flat tensor.
struct IndexRange {
  int64_t begin = 0, end = 0;
  bool operator==(const IndexRange& o) const { return begin == o.begin && end == o.end; }
};

struct UnitLayout {
  std::string name;
  std::vector<ParamSpec> params;
  std::vector<int64_t> offsets;  // start of each param in the flat buffer
  int64_t numel = 0;             // sum of the params' sizes
  int64_t padded_numel = 0;      // numel rounded up to a multiple of the world size
  int64_t world_size = 1;

  static UnitLayout make(std::string name, std::vector<ParamSpec> params, int64_t world_size);
  int64_t shard_numel() const { return padded_numel / world_size; }
  int index_of(const std::string& param) const;  // -1 if absent
  // Where AdamW weight decay applies in the flat values [begin, begin + count): the intervals covered
  // by parameters with decay = true (never padding), relative to begin, ascending, adjacent ones merged.
  std::vector<IndexRange> decay_ranges(int64_t begin, int64_t count) const;
};

struct ShardingOptions {
  config::Sharding mode = config::Sharding::full;
  at::ScalarType compute_dtype = at::kFloat;  // dtype of the gathered weights the model computes with
  at::ScalarType param_dtype = at::kFloat;    // all-gather wire dtype
  at::ScalarType reduce_dtype = at::kFloat;   // reduce-scatter wire dtype
  at::Device device = at::kCPU;
};

class FlatUnit {
 public:
  FlatUnit(UnitLayout layout, Communicator& comm, ShardingOptions options);
  FlatUnit(const FlatUnit&) = delete;
  FlatUnit& operator=(const FlatUnit&) = delete;

  const UnitLayout& layout() const { return layout_; }
  bool replicated() const { return options_.mode == config::Sharding::none; }

  // Master weights and their gradients: (shard_numel) fp32 on this rank, or (padded_numel) when
  // replicated. The optimizer works on these; call mark_params_changed() after updating params().
  at::Tensor& params() { return shard_; }
  at::Tensor& grads();
  void mark_params_changed() { stale_ = true; }
  // Where AdamW weight decay applies in params() (UnitLayout::decay_ranges of this rank's values).
  std::vector<IndexRange> decay_ranges() const { return layout_.decay_ranges(shard_offset(), shard_.numel()); }
  // Offset of params()[0] in the flat buffer.
  int64_t shard_offset() const;

  // The part of a parameter this rank stores: values [begin, begin + count) of the flattened parameter.
  struct Slice {
    int64_t begin = 0, count = 0;
  };
  Slice local_slice(const std::string& name) const;
  // Sets that part from `values` (count values, any float dtype). Loading this way never needs the
  // whole parameter in memory.
  void set_local_slice(const std::string& name, const at::Tensor& values);
  // Sets one parameter from its full (unsharded) value; every rank passes the same tensor.
  void set_param(const std::string& name, const at::Tensor& full_value);
  // The whole unit's fp32 master weights, (padded_numel); collective (all ranks, same order).
  at::Tensor gather_full_fp32();
  // Parameter i of layout() as a view of a flat (padded_numel) buffer.
  at::Tensor param_of(const at::Tensor& flat, size_t i) const;

  void start_gather();
  void finish_gather();
  void gather() {
    start_gather();
    finish_gather();
  }
  bool gathered() const { return gathered_; }
  // Parameter tensors (layout order) viewing the gathered buffer.
  std::vector<at::Tensor> views(bool requires_grad);
  void release();

  // After this unit's backward: move the flat gradient into grads(). With `reduce` false the gradient
  // stays unsharded (accumulating over micro-batches) until a call with `reduce` true.
  void reduce_grads(bool reduce);
  // Waits for an outstanding reduce_grads().
  void finish_reduce();
  void zero_grads();

  // Bytes this rank sent+received in collectives since the last reset (for the benchmarks).
  int64_t comm_bytes() const { return comm_bytes_; }
  void reset_comm_bytes() { comm_bytes_ = 0; }

 private:
  void allocate_full();
  bool aliases_master() const;
  // The full buffer is permanent (replicated, or one rank: nothing to free memory for).
  bool keeps_full() const;
  // grads() += g; the first contribution after zero_grads() is adopted without a copy.
  void accumulate_grad(const at::Tensor& g);

  UnitLayout layout_;
  Communicator& comm_;
  ShardingOptions options_;
  at::Tensor shard_;          // fp32 master
  at::Tensor grad_;           // fp32; undefined after zero_grads() until the first gradient arrives
  at::Tensor full_;           // (padded_numel) compute dtype; leaf with requires_grad
  at::Tensor unsharded_acc_;  // (padded_numel) fp32 gradient kept over micro-batches when not reducing
  at::Tensor wire_in_, wire_out_;
  WorkPtr gather_work_, reduce_work_;
  at::Tensor reduce_recv_;
  bool gathered_ = false;
  bool stale_ = true;  // replicated compute copy needs refreshing
  int64_t comm_bytes_ = 0;
};

}  // namespace neftune::dist
