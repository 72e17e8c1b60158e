// A string -> id hash map for vocabularies (100k-200k tokens): the strings live in one arena and the
// slots in one array (open addressing, linear probing), so a lookup by string_view touches about one
// cache line and allocates nothing. Insert-only.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace neftune::tok {

class StringIdMap {
 public:
  explicit StringIdMap(size_t expected = 0) { rehash(expected); }

  // Inserts or overwrites.
  void set(std::string_view key, int32_t id) {
    if (2 * (size_ + 1) > slots_.size()) rehash(slots_.size());
    const uint64_t h = hash(key);
    Slot* s = probe(key, h);
    if (s->id < 0) {
      s->hash = h;
      s->offset = static_cast<uint32_t>(arena_.size());
      s->len = static_cast<uint32_t>(key.size());
      arena_.append(key);
      ++size_;
    }
    s->id = id;
  }
  // The id of `key`, or -1.
  int32_t find(std::string_view key) const { return const_cast<StringIdMap*>(this)->probe(key, hash(key))->id; }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0, len = 0;
    int32_t id = -1;  // -1: empty
  };

  static uint64_t hash(std::string_view s) {
    uint64_t h = 1469598103934665603ull ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      h = (h ^ w) * 0x9E3779B97F4A7C15ull;
      h ^= h >> 29;
    }
    for (; i < s.size(); ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 1099511628211ull;
    h ^= h >> 32;
    return h * 0xD6E8FEB86659FD93ull;
  }

  // The slot holding `key`, or the empty slot where it would go.
  Slot* probe(std::string_view key, uint64_t h) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = (h >> 20) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.id < 0) return &s;
      if (s.hash == h && s.len == key.size() && std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0)
        return &s;
    }
  }

  void rehash(size_t want) {
    size_t n = 16;
    while (n < 2 * want) n *= 2;
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(n, Slot{});
    const size_t mask = n - 1;
    for (const Slot& s : old) {
      if (s.id < 0) continue;
      size_t i = (s.hash >> 20) & mask;
      while (slots_[i].id >= 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::string arena_;
  size_t size_ = 0;
};

}  // namespace neftune::tok
