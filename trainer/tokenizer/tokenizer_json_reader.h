// Reads a tokenizer.json in one pass (nlohmann's SAX interface): model.vocab and model.merges, nine
// tenths of a Llama 3 file, go straight to a sink instead of into a JSON tree, which halves the load time
// (a tree of 128k object entries costs more to build and free than the tokenizer's own tables).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace neftune::tok {

class TokenizerJsonSink {
 public:
  virtual ~TokenizerJsonSink() = default;
  // One "token": id entry of model.vocab (an object).
  virtual void vocab_entry(const std::string& token, int64_t id) = 0;
  // Merge number `rank` of model.merges (an array of "left right" strings or ["left", "right"] pairs).
  virtual void merge(std::string_view left, std::string_view right, size_t rank) = 0;
};

// The document without model.vocab and model.merges when they were streamed into `sink` (when they have
// the shapes above; otherwise they stay in the tree). Throws UserError naming `path` (and the JSON path
// for a malformed vocab or merges entry).
nlohmann::json read_tokenizer_json(const std::string& path, TokenizerJsonSink& sink);

}  // namespace neftune::tok
