// A CPU allocator that counts live tensor bytes and their peak, installed over LibTorch's default. It
// measures what tensors hold (model state, gathered units, gradients, activations) exactly, which
// resident-set figures cannot: glibc keeps freed blocks resident, and MPI maps buffers of its own.
#pragma once

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/version.h>

#include <atomic>
#include <cstdint>

namespace neftune::bench {

class CountingAllocator final : public at::Allocator {
 public:
  // Installs it (LibTorch allocates every CPU tensor through it from now on).
  static CountingAllocator& install() {
    static CountingAllocator a;
    c10::SetCPUAllocator(&a, /*priority=*/100);
    return a;
  }
  // One block per tensor: a header holding its size, then its bytes. The data pointer is its own
  // context, which raw_allocate() (used by oneDNN's bf16 kernels) requires.
  at::DataPtr allocate_counted(size_t n) const {
    void* base = c10::alloc_cpu(n + kHeader);
    *static_cast<size_t*>(base) = n;
    void* data = static_cast<char*>(base) + kHeader;
    const int64_t now = current_ += static_cast<int64_t>(n);
    int64_t p = peak_.load();
    while (now > p && !peak_.compare_exchange_weak(p, now)) {
    }
    return {data, data, &CountingAllocator::release, at::Device(at::kCPU)};
  }
  at::DeleterFnPtr raw_deleter() const override { return &CountingAllocator::release; }
  // LibTorch 2.3 made allocate() non-const and added copy_data().
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  at::DataPtr allocate(size_t n) override { return allocate_counted(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  at::DataPtr allocate(size_t n) const override { return allocate_counted(n); }
#endif
  int64_t current() const { return current_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_ = current_.load(); }

 private:
  static constexpr size_t kHeader = 64;  // keeps the data at the default allocator's 64-byte alignment

  CountingAllocator() = default;
  static void release(void* data) {
    void* base = static_cast<char*>(data) - kHeader;
    current_ -= static_cast<int64_t>(*static_cast<size_t*>(base));
    c10::free_cpu(base);
  }
  static inline std::atomic<int64_t> current_{0}, peak_{0};
};

}  // namespace neftune::bench
