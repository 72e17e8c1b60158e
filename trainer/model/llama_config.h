// LLaMA dimensions, read from and written to an HF config.json (LlamaConfig field names).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/train_config.h"

namespace neftune::model {

struct LlamaConfig {
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  std::optional<int64_t> pad_token_id;
  double initializer_range = 0.02;
  std::string torch_dtype = "float32";

  int64_t n_rep() const { return num_attention_heads / num_key_value_heads; }
  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }

  // Parameters of each FSDP unit: the embedding, one decoder layer, the final norm + untied LM head.
  struct UnitSizes {
    int64_t embed = 0, layer = 0, head = 0;
  };
  // Computed in 64 bits with overflow checks: nullopt when a count (or the total) does not fit.
  std::optional<UnitSizes> checked_unit_sizes() const;
  // The same; throws std::overflow_error where checked_unit_sizes() is nullopt (check() refuses such a
  // config, so a checked config never throws).
  UnitSizes unit_sizes() const;
  int64_t num_parameters() const;

  // Parses <dir>/config.json; unsupported features (rope_scaling, biases, other activations) are
  // errors naming the field.
  static LlamaConfig load(const std::string& config_json_path);
  static LlamaConfig from_json_text(const std::string& text, const std::string& source);
  // A new model from the config's model.init, for a tokenizer's vocabulary.
  static LlamaConfig from_init(const config::ModelInit& init, int64_t vocab_size, int64_t bos, int64_t eos);
  std::string to_json_text() const;
  // Throws a CheckpointError-like message naming `source` if the dims are inconsistent.
  void check(const std::string& source) const;
};

}  // namespace neftune::model
