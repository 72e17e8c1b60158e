#include "distributed/flat_unit.h"

#include <c10/core/StorageImpl.h>

#include <algorithm>

namespace neftune::dist {
namespace {

// FSDP's storage trick: autograd keeps references to the gathered weights it saved for backward. Freeing
// the *storage* (not the tensor) releases the memory while those references stay valid as metadata; a
// re-gather refills the same storage before backward reads it.
void free_storage(const at::Tensor& t) {
  c10::StorageImpl* impl = t.storage().unsafeGetStorageImpl();
  if (impl->nbytes() == 0) return;
  impl->set_data_ptr_noswap(at::DataPtr(nullptr, t.device()));
  impl->set_nbytes(0);
}

void allocate_storage(const at::Tensor& t) {
  c10::StorageImpl* impl = t.storage().unsafeGetStorageImpl();
  const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (impl->nbytes() == nbytes) return;
  impl->set_data_ptr_noswap(impl->allocator()->allocate(nbytes));
  impl->set_nbytes(nbytes);
}

// A tensor over the same memory with no autograd link (its own version counter). Gathers write through
// it: refilling weights that autograd saved for backward must not count as an in-place modification
// (the values written are the same parameters).
at::Tensor raw_alias(const at::Tensor& t) {
  return at::from_blob(t.data_ptr(), t.sizes(), t.strides(), t.options().requires_grad(false));
}

int64_t wire_bytes(int64_t numel, at::ScalarType dtype, int world, int64_t factor) {
  // Ring-algorithm volume per rank: (N-1)/N of the full buffer per all-gather or reduce-scatter.
  return factor * numel * static_cast<int64_t>(c10::elementSize(dtype)) * (world - 1) / world;
}

}  // namespace

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (const int64_t s : shape) n *= s;
  return n;
}

UnitLayout UnitLayout::make(std::string name, std::vector<ParamSpec> params, int64_t world_size) {
  TORCH_CHECK(world_size >= 1, "world size must be >= 1");
  UnitLayout l;
  l.name = std::move(name);
  l.params = std::move(params);
  l.world_size = world_size;
  for (const auto& p : l.params) {
    l.offsets.push_back(l.numel);
    l.numel += p.numel();
  }
  l.padded_numel = (l.numel + world_size - 1) / world_size * world_size;
  if (l.padded_numel == 0) l.padded_numel = world_size;
  return l;
}

int UnitLayout::index_of(const std::string& param) const {
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name == param) return static_cast<int>(i);
  return -1;
}

std::vector<IndexRange> UnitLayout::decay_ranges(int64_t begin, int64_t count) const {
  std::vector<IndexRange> out;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].decay) continue;
    const int64_t lo = std::max(offsets[i], begin) - begin;
    const int64_t hi = std::min(offsets[i] + params[i].numel(), begin + count) - begin;
    if (lo >= hi) continue;
    if (!out.empty() && out.back().end == lo) {
      out.back().end = hi;
    } else {
      out.push_back({lo, hi});
    }
  }
  return out;
}

FlatUnit::FlatUnit(UnitLayout layout, Communicator& comm, ShardingOptions options)
    : layout_(std::move(layout)), comm_(comm), options_(options) {
  TORCH_CHECK(layout_.world_size == comm_.size(), "unit ", layout_.name, " laid out for world size ",
              layout_.world_size, " but the communicator has ", comm_.size());
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(options_.device);
  const int64_t n = replicated() ? layout_.padded_numel : layout_.shard_numel();
  shard_ = at::zeros({n}, f32);
  if (aliases_master()) {
    full_ = shard_.detach().requires_grad_(true);
  } else {
    full_ = at::empty({layout_.padded_numel}, f32.dtype(options_.compute_dtype)).requires_grad_(true);
    if (!keeps_full()) free_storage(full_);
  }
}

bool FlatUnit::aliases_master() const {
  return options_.compute_dtype == at::kFloat && (replicated() || comm_.size() == 1);
}

bool FlatUnit::keeps_full() const { return replicated() || comm_.size() == 1; }

int64_t FlatUnit::shard_offset() const { return replicated() ? 0 : comm_.rank() * layout_.shard_numel(); }

FlatUnit::Slice FlatUnit::local_slice(const std::string& name) const {
  const int i = layout_.index_of(name);
  TORCH_CHECK(i >= 0, "unit ", layout_.name, " has no parameter ", name);
  const int64_t begin = layout_.offsets[i], end = begin + layout_.params[i].numel();
  const int64_t s_begin = shard_offset(), s_end = s_begin + shard_.numel();
  const int64_t lo = std::max(begin, s_begin), hi = std::min(end, s_end);
  return lo < hi ? Slice{lo - begin, hi - lo} : Slice{0, 0};
}

void FlatUnit::set_local_slice(const std::string& name, const at::Tensor& values) {
  const Slice sl = local_slice(name);
  TORCH_CHECK(values.numel() == sl.count, "parameter ", name, ": this rank stores ", sl.count, " values, got ",
              values.numel());
  if (sl.count == 0) return;
  const int i = layout_.index_of(name);
  at::NoGradGuard no_grad;
  shard_.narrow(0, layout_.offsets[i] + sl.begin - shard_offset(), sl.count).copy_(values.reshape({-1}));
  stale_ = true;
}

void FlatUnit::set_param(const std::string& name, const at::Tensor& full_value) {
  const int i = layout_.index_of(name);
  TORCH_CHECK(i >= 0, "unit ", layout_.name, " has no parameter ", name);
  TORCH_CHECK(full_value.numel() == layout_.params[i].numel(), "parameter ", name, ": expected ",
              layout_.params[i].numel(), " values, got ", full_value.numel());
  const Slice sl = local_slice(name);
  set_local_slice(name, full_value.reshape({-1}).narrow(0, sl.begin, sl.count));
}

at::Tensor FlatUnit::gather_full_fp32() {
  if (replicated() || comm_.size() == 1) return shard_.clone();
  at::Tensor out = at::empty({layout_.padded_numel}, shard_.options());
  comm_.all_gather(out, shard_)->wait();
  return out;
}

at::Tensor FlatUnit::param_of(const at::Tensor& flat, size_t i) const {
  const ParamSpec& p = layout_.params.at(i);
  return flat.narrow(0, layout_.offsets[i], p.numel()).view(p.shape);
}

void FlatUnit::allocate_full() { allocate_storage(full_); }

void FlatUnit::start_gather() {
  if (gathered_ || gather_work_) return;
  if (aliases_master()) {
    gathered_ = true;
    return;
  }
  at::NoGradGuard no_grad;
  if (keeps_full()) {  // a local copy in the compute dtype, refreshed only when the weights changed
    if (stale_) raw_alias(full_).copy_(shard_);
    stale_ = false;
    gathered_ = true;
    return;
  }
  allocate_full();
  const at::Tensor send = options_.param_dtype == at::kFloat ? shard_ : (wire_in_ = shard_.to(options_.param_dtype));
  at::Tensor recv = raw_alias(full_);
  if (options_.param_dtype != options_.compute_dtype)
    recv = wire_out_ = at::empty({layout_.padded_numel}, shard_.options().dtype(options_.param_dtype));
  gather_work_ = comm_.all_gather(recv, send);
  comm_bytes_ += wire_bytes(layout_.padded_numel, options_.param_dtype, comm_.size(), 1);
}

void FlatUnit::finish_gather() {
  if (gathered_) return;
  if (!gather_work_) start_gather();
  if (gathered_) return;
  gather_work_->wait();
  gather_work_.reset();
  if (wire_out_.defined()) {
    at::NoGradGuard no_grad;
    raw_alias(full_).copy_(wire_out_);
    wire_out_.reset();
  }
  wire_in_.reset();
  gathered_ = true;
}

std::vector<at::Tensor> FlatUnit::views(bool requires_grad) {
  TORCH_CHECK(gathered_, "unit ", layout_.name, ": views() before gather");
  const at::Tensor base = requires_grad ? full_ : full_.detach();
  std::vector<int64_t> sizes;
  sizes.reserve(layout_.params.size() + 1);
  for (const auto& p : layout_.params) sizes.push_back(p.numel());
  if (layout_.padded_numel > layout_.numel) sizes.push_back(layout_.padded_numel - layout_.numel);
  // One split node for the whole unit: its backward writes every parameter's gradient into one flat
  // buffer with a single allocation.
  const std::vector<at::Tensor> parts = at::split_with_sizes(base, sizes);
  std::vector<at::Tensor> out;
  out.reserve(layout_.params.size());
  for (size_t i = 0; i < layout_.params.size(); ++i) out.push_back(parts[i].view(layout_.params[i].shape));
  return out;
}

void FlatUnit::release() {
  if (gather_work_) finish_gather();
  if (aliases_master() || keeps_full()) return;
  free_storage(full_);
  gathered_ = false;
}

at::Tensor& FlatUnit::grads() {
  if (!grad_.defined()) grad_ = at::zeros_like(shard_);
  return grad_;
}

void FlatUnit::accumulate_grad(const at::Tensor& g) {
  at::NoGradGuard no_grad;
  if (grad_.defined()) {
    grad_.add_(g);
  } else {
    // Adopt the buffer (it is ours: autograd's or a collective's result), converting only if needed.
    grad_ = g.scalar_type() == at::kFloat && g.is_contiguous() ? g : g.to(at::kFloat).contiguous();
  }
}

void FlatUnit::reduce_grads(bool reduce) {
  finish_reduce();
  at::Tensor g = full_.grad();
  if (!reduce) {
    // Keep the gradient unsharded. fp32 accumulates in place in full_.grad(); other dtypes in fp32.
    if (g.defined() && options_.compute_dtype != at::kFloat) {
      at::NoGradGuard no_grad;
      unsharded_acc_ = unsharded_acc_.defined() ? unsharded_acc_.add_(g) : g.to(at::kFloat);
      full_.mutable_grad() = at::Tensor();
    }
    return;
  }
  at::Tensor total = g;
  if (unsharded_acc_.defined()) {
    total = g.defined() ? unsharded_acc_.add_(g) : unsharded_acc_;
    unsharded_acc_ = at::Tensor();
  }
  full_.mutable_grad() = at::Tensor();
  if (!total.defined()) return;  // the unit took no part in this backward
  at::NoGradGuard no_grad;
  if (comm_.size() == 1) {
    accumulate_grad(total);
    return;
  }
  const at::Tensor send = total.to(options_.reduce_dtype).contiguous();
  if (replicated()) {
    reduce_recv_ = send;
    reduce_work_ = comm_.all_reduce(send, ReduceOp::sum);
    comm_bytes_ += wire_bytes(layout_.padded_numel, options_.reduce_dtype, comm_.size(), 2);
  } else {
    reduce_recv_ = at::empty({layout_.shard_numel()}, send.options());
    reduce_work_ = comm_.reduce_scatter(reduce_recv_, send);
    comm_bytes_ += wire_bytes(layout_.padded_numel, options_.reduce_dtype, comm_.size(), 1);
  }
}

void FlatUnit::finish_reduce() {
  if (!reduce_work_) return;
  reduce_work_->wait();
  reduce_work_.reset();
  accumulate_grad(reduce_recv_);
  reduce_recv_ = at::Tensor();
}

void FlatUnit::zero_grads() {
  finish_reduce();
  grad_ = at::Tensor();  // freed until the next backward (like set_to_none)
  unsharded_acc_ = at::Tensor();
  full_.mutable_grad() = at::Tensor();
}

}  // namespace neftune::dist
