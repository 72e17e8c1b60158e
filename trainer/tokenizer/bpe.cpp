#include "trainer/tokenizer/bpe.h"

#include <algorithm>
#include <stdexcept>

namespace neftune::tok {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return ((static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right)) + 1;
}

uint64_t hash_key(uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  return key;
}

// The pieces longer than this are merged every time instead of being cached (as HF tokenizers does).
constexpr size_t kMaxCachedPiece = 256;

struct Symbol {
  int32_t id, prev, next, len;  // len 0: merged into the symbol before it
};
struct Candidate {
  int32_t rank, pos, result;
  // std::push_heap keeps the largest on top: "larger" here is the lower rank, then the leftmost position.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

BytePairEncoder::BytePairEncoder(StringIdMap vocab, const std::vector<Merge>& merges, bool ignore_merges,
                                 size_t cache_capacity)
    : vocab_(std::move(vocab)), ignore_merges_(ignore_merges), cache_capacity_(cache_capacity) {
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const int32_t id = vocab_.find(std::string_view(&c, 1));
    if (id < 0) {
      static const char* hex = "0123456789ABCDEF";
      throw std::invalid_argument(std::string("byte 0x") + hex[b >> 4] + hex[b & 15] + " has no token");
    }
    byte_ids_[b] = id;
  }
  size_t capacity = 16;
  while (capacity < 2 * merges.size()) capacity *= 2;
  slots_.assign(capacity, Slot{0, 0, 0});
  mask_ = capacity - 1;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Merge& m = merges[rank];
    const uint64_t key = pair_key(m.left, m.right);
    uint64_t i = hash_key(key) & mask_;
    while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1) & mask_;
    if (slots_[i].key == 0) ++merge_count_;
    slots_[i] = Slot{key, static_cast<int32_t>(rank), m.result};  // a repeated pair: the later rank wins, as in HF
  }
}

const BytePairEncoder::Slot* BytePairEncoder::find_merge(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  for (uint64_t i = hash_key(key) & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.key == key) return &s;
    if (s.key == 0) return nullptr;
  }
}

void BytePairEncoder::encode(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (piece.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  if (ignore_merges_) {
    if (const int32_t id = vocab_.find(piece); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::string key(piece);
  const bool cacheable = piece.size() <= kMaxCachedPiece && cache_capacity_ > 0;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge(piece, out);
  if (cacheable) {
    std::vector<int32_t> ids(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= cache_capacity_) cache_.clear();
    cache_.emplace(std::move(key), std::move(ids));
  }
}

void BytePairEncoder::merge(std::string_view piece, std::vector<int32_t>& out) const {
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  const auto n = static_cast<int32_t>(piece.size());
  symbols.resize(static_cast<size_t>(n));
  heap.clear();
  for (int32_t i = 0; i < n; ++i)
    symbols[i] = Symbol{byte_ids_[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1, 1};
  auto push = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const Slot* m = find_merge(symbols[pos].id, symbols[next].id)) {
      heap.push_back(Candidate{m->rank, pos, m->result});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    // A candidate is stale when either symbol has changed since it was pushed.
    const Slot* m = find_merge(left.id, symbols[left.next].id);
    if (!m || m->result != top.result) continue;
    Symbol& right = symbols[left.next];
    left.id = top.result;
    left.len += right.len;
    left.next = right.next;
    right.len = 0;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    push(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace neftune::tok
