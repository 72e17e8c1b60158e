// The parts of a tokenizer.json that neftune runs (hf_load.cpp reads them, hf_tokenizer.cpp runs them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/tokenizer/added_tokens.h"
#include "trainer/tokenizer/bpe.h"
#include "trainer/tokenizer/pretokenize.h"

namespace neftune::tok {

struct HfParts {
  std::string json_path;                                      // tokenizer.json
  std::string config_path;                                    // tokenizer_config.json beside it; empty when absent
  bool nfc = false;                                           // the normalizer: NFC or nothing
  AddedTokenMatcher raw_tokens{{}};                           // added tokens matched in the raw text
  AddedTokenMatcher normalized_tokens{{}};                    // added tokens matched in the normalized text
  std::vector<std::unique_ptr<PreTokenizer>> pre_tokenizers;  // in order; ByteLevel last
  std::unique_ptr<BytePairEncoder> bpe;
  std::vector<int32_t> prefix, suffix;  // the post-processor's ids around the text (add_special_tokens)
  std::vector<std::string> id_bytes;    // what decode writes for each id (a hole: empty)
  std::vector<uint8_t> id_added;        // 1: an added token (id_bytes is its content)
  std::vector<uint8_t> id_special;      // 1: a special added token (decode skips it)
  int32_t bos = -1, eos = -1, pad = -1;
  std::vector<int32_t> stop_ids;  // eos and the end-of-turn tokens the file has
};

// Reads `json_path` and the tokenizer_config.json beside it. Throws UserError naming the file, the JSON
// path and the type of anything it does not implement.
HfParts load_hf_parts(const std::string& json_path);

}  // namespace neftune::tok
