// Small deterministic RNG utilities, identical on every platform and library version (std::shuffle
// and std::uniform_int_distribution are not), so data order and built-in data never depend on the
// standard library.
#pragma once

#include <cstdint>
#include <initializer_list>

namespace neftune::data {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Mixes several integers into one 64-bit key (order matters).
inline uint64_t mix_key(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x6A09E667F3BCC909ull;
  for (const uint64_t p : parts) h = splitmix64(h ^ splitmix64(p));
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() { return splitmix64(state_++); }
  // Uniform in [0, n) (n > 0), without modulo bias worth caring about for n << 2^64.
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }
  int64_t range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1))); }

 private:
  uint64_t state_;
};

}  // namespace neftune::data
