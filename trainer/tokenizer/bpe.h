// Byte-level BPE: HF tokenizers' BPE model behind a ByteLevel pre-tokenizer (Llama 3, Qwen, GPT-2).
// A piece starts as one symbol per byte (the vocabulary id of the byte's character) and the merge of
// lowest rank is applied first, the leftmost among equal ranks, until no adjacent pair has a merge: a
// binary heap over a linked list of symbols, O(n log n) in the piece's length. Pieces already encoded
// are remembered (a bounded cache), since text repeats its words.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "trainer/tokenizer/string_id_map.h"

namespace neftune::tok {

class BytePairEncoder {
 public:
  struct Merge {
    int32_t left, right, result;  // vocabulary ids
  };
  // `vocab`: the bytes each token spells -> its id (tokens spelled outside the byte-level alphabet left
  // out); `merges` in rank order. `ignore_merges` (Llama 3): a piece that is itself a token is that token,
  // whatever the merges would make of it. Throws std::invalid_argument when a byte has no token.
  BytePairEncoder(StringIdMap vocab, const std::vector<Merge>& merges, bool ignore_merges,
                  size_t cache_capacity = 1 << 16);

  // Appends the ids of one piece (raw bytes). Safe to call from several threads.
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

  size_t merge_count() const { return merge_count_; }

 private:
  struct Slot {
    uint64_t key;  // (left << 32 | right) + 1; 0 = empty
    int32_t rank, result;
  };
  const Slot* find_merge(int32_t left, int32_t right) const;
  void merge(std::string_view piece, std::vector<int32_t>& out) const;

  StringIdMap vocab_;
  std::array<int32_t, 256> byte_ids_{};
  std::vector<Slot> slots_;  // open addressing, linear probing; a power of two, at most half full
  uint64_t mask_ = 0;
  size_t merge_count_ = 0;
  bool ignore_merges_;
  size_t cache_capacity_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;  // piece -> ids; cleared when full
};

}  // namespace neftune::tok
