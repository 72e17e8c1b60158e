// Text <-> ids. Three kinds: SentencePiece (LLaMA-1/2 tokenizer.model), HF tokenizer.json with
// byte-level BPE (Llama 3, Qwen2/Qwen3; hf_tokenizer.h) and a byte-level tokenizer (ids 0..255 are
// bytes, then BOS, EOS, PAD) for models made from scratch.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/train_config.h"

namespace neftune::tok {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;
  // add_bos: add the tokens that start a sequence: BOS for sentencepiece and byte; for tokenizer.json
  // whatever its post-processor adds (HF's add_special_tokens), which may be nothing.
  virtual std::vector<int32_t> encode(const std::string& text, bool add_bos) const = 0;
  // The text of `ids`, leaving out BOS/EOS (special tokens).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The vocabulary entry of one id as the tokenizer spells it ("▁world", "Ġworld", "<0x0A>"), for display.
  virtual std::string piece(int32_t id) const = 0;
  virtual int64_t vocab_size() const = 0;  // the largest id + 1
  virtual int32_t bos_id() const = 0;      // -1 when the tokenizer has none (Qwen)
  virtual int32_t eos_id() const = 0;
  // The ids that end generation: EOS first, then end-of-turn tokens (Llama 3 <|eot_id|>, ChatML <|im_end|>).
  virtual std::vector<int32_t> stop_ids() const { return {eos_id()}; }
  // The id written into padded positions. It needs no vocabulary entry of its own: the attention
  // mask and the -100 labels carry padding.
  virtual int32_t pad_id() const = 0;
  // Writes the tokenizer files into an HF model directory.
  virtual void save(const std::string& dir) const = 0;
};

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256, kEos = 257, kPad = 258;
  std::string kind() const override { return "byte"; }
  std::vector<int32_t> encode(const std::string& text, bool add_bos) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string piece(int32_t id) const override;
  int64_t vocab_size() const override { return 259; }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEos; }
  int32_t pad_id() const override { return kPad; }
  void save(const std::string& dir) const override;
};

std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_path);
// A tokenizer.json (with the tokenizer_config.json beside it, when there is one).
std::unique_ptr<Tokenizer> make_hf_tokenizer(const std::string& json_path);

// The tokenizer file of a directory and its kind: tokenizer.model (sentencepiece; LLaMA-1/2 and Mistral
// directories also hold a tokenizer.json converted from it), else tokenizer.json (hf), else
// neftune_tokenizer.json (byte). nullopt when the directory has none of them.
struct TokenizerFile {
  config::TokenizerKind kind;
  std::string path;
};
std::optional<TokenizerFile> find_tokenizer_file(const std::string& dir);

// From the config: tokenizer.kind and tokenizer.path (a file, or a directory to look in; null = model.path).
// kind auto: tokenizer.path's or model.path's file as find_tokenizer_file picks it; byte without either.
std::unique_ptr<Tokenizer> load_tokenizer(const config::TokenizerConfig& cfg,
                                          const std::optional<std::string>& model_dir);
// The tokenizer of a model directory (find_tokenizer_file), or of a tokenizer file given directly.
std::unique_ptr<Tokenizer> load_tokenizer_from_model_dir(const std::string& dir);

}  // namespace neftune::tok
