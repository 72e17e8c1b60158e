// tokenizer.json (HF tokenizers) for byte-level BPE, as Llama 3 and Qwen2/Qwen3 ship it: added tokens
// matched first, the NFC normalizer, Split/ByteLevel pre-tokenizers, the BPE model (merge ranks,
// ignore_merges), the post-processor (TemplateProcessing, ByteLevel, Sequence) and the ByteLevel
// decoder. README "Tokenizers" lists what is supported and what is refused.
#pragma once

#include <string>
#include <vector>

#include "trainer/tokenizer/hf_parts.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::tok {

class HfTokenizer final : public Tokenizer {
 public:
  // `json_path`: a tokenizer.json; bos/eos/pad come from the tokenizer_config.json beside it.
  explicit HfTokenizer(const std::string& json_path);

  std::string kind() const override { return "hf"; }
  // add_bos: apply the file's post-processor (HF's add_special_tokens), which may add nothing.
  std::vector<int32_t> encode(const std::string& text, bool add_bos) const override;
  // Skips special added tokens; invalid UTF-8 becomes U+FFFD.
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string piece(int32_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(parts_.id_bytes.size()); }
  int32_t bos_id() const override { return parts_.bos; }
  int32_t eos_id() const override { return parts_.eos; }
  int32_t pad_id() const override { return parts_.pad; }
  std::vector<int32_t> stop_ids() const override { return parts_.stop_ids; }
  // Copies tokenizer.json, tokenizer_config.json and special_tokens_map.json.
  void save(const std::string& dir) const override;

 private:
  void encode_text(std::string_view text, std::vector<int32_t>& ids) const;

  HfParts parts_;
};

}  // namespace neftune::tok
