// Text <-> ids. Two kinds: SentencePiece (LLaMA-1/2 tokenizer.model) and a byte-level tokenizer
// (ids 0..255 are bytes, then BOS, EOS, PAD) for models made from scratch.
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
  virtual std::vector<int32_t> encode(const std::string& text, bool add_bos) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
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
  int64_t vocab_size() const override { return 259; }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEos; }
  int32_t pad_id() const override { return kPad; }
  void save(const std::string& dir) const override;
};

std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_path);

// From the config: tokenizer.kind and tokenizer.path (falling back to <model.path>/tokenizer.model).
std::unique_ptr<Tokenizer> load_tokenizer(const config::TokenizerConfig& cfg, const std::optional<std::string>& model_dir);
// What a model directory holds: tokenizer.model (sentencepiece) or neftune_tokenizer.json (byte).
std::unique_ptr<Tokenizer> load_tokenizer_from_model_dir(const std::string& dir);

}  // namespace neftune::tok
