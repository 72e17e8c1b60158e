// A CPU allocator that counts live tensor bytes and their peak, installed over LibTorch's default. It
// measures what tensors hold (model state, gathered units, gradients, activations) exactly, which
// resident-set figures cannot: glibc keeps freed blocks resident, and MPI maps buffers of its own.
#pragma once

#include <c10/core/CPUAllocator.h>

#include <atomic>

namespace neftune::bench {

class CountingAllocator final : public at::Allocator {
 public:
  CountingAllocator() : base_(c10::GetDefaultCPUAllocator()) {}
  // Installs it (LibTorch allocates every CPU tensor through it from now on).
  static CountingAllocator& install() {
    static CountingAllocator a;
    c10::SetCPUAllocator(&a, /*priority=*/100);
    return a;
  }
  at::DataPtr allocate(size_t n) const override {
    at::DataPtr inner = base_->allocate(n);
    void* data = inner.get();
    auto* ctx = new Ctx{std::move(inner), n, this};
    const int64_t now = current_ += static_cast<int64_t>(n);
    int64_t p = peak_.load();
    while (now > p && !peak_.compare_exchange_weak(p, now)) {
    }
    return {data, ctx, &CountingAllocator::release, at::Device(at::kCPU)};
  }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#endif
  int64_t current() const { return current_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_ = current_.load(); }

 private:
  struct Ctx {
    at::DataPtr inner;
    size_t n;
    const CountingAllocator* owner;
  };
  static void release(void* p) {
    auto* ctx = static_cast<Ctx*>(p);
    ctx->owner->current_ -= static_cast<int64_t>(ctx->n);
    delete ctx;  // frees the block through the default allocator
  }
  at::Allocator* base_;
  mutable std::atomic<int64_t> current_{0}, peak_{0};
};

}  // namespace neftune::bench
