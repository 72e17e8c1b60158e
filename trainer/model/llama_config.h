// The dimensions and architecture of a LLaMA-family model, read from and written to an HF config.json
// (HF's field names). The families differ only in a few switches, all carried here:
//   llama    Llama 1/2/3/3.1/3.2: rope_scaling (llama3, linear), attention_bias (q/k/v/o_proj biases)
//   mistral  sliding_window: a query sees only the last sliding_window positions
//   qwen2    Qwen2/2.5: biases on q/k/v_proj
//   qwen3    q_norm/k_norm (RMSNorm over head_dim on each head), attention_bias; head_dim is its own field
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/train_config.h"

namespace neftune::model {

enum class ModelType { llama, mistral, qwen2, qwen3 };
// config.json "model_type" and "architectures"[0] of each.
const char* model_type_name(ModelType t);
const char* architecture_name(ModelType t);

// RoPE frequency scaling as HF applies it to the inverse frequencies (config.json rope_scaling).
struct RopeScaling {
  enum class Type { none, linear, llama3 };
  Type type = Type::none;
  double factor = 1.0;                              // linear: inv_freq / factor; llama3: the long-wavelength divisor
  double low_freq_factor = 1.0;                     // llama3 only
  double high_freq_factor = 4.0;                    // llama3 only
  int64_t original_max_position_embeddings = 8192;  // llama3 only: the pre-extension context
};

struct LlamaConfig {
  ModelType model_type = ModelType::llama;
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
  RopeScaling rope_scaling;               // type none: plain RoPE
  bool attention_bias = false;            // llama, qwen3: biases on q_proj, k_proj, v_proj and o_proj
  std::optional<int64_t> sliding_window;  // mistral: query at p sees keys p - window < j <= p; none = all

  // Per-architecture switches, derived from model_type and attention_bias.
  bool qkv_bias() const { return attention_bias || model_type == ModelType::qwen2; }  // q/k/v_proj.bias
  bool o_bias() const { return attention_bias; }                                      // o_proj.bias
  bool qk_norm() const { return model_type == ModelType::qwen3; }                     // q_norm, k_norm
  int64_t attention_window() const { return sliding_window.value_or(0); }             // 0 = unbounded

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

  // Parses <dir>/config.json; whatever the model would compute differently from these families
  // (another model_type, a rope_scaling type other than default/linear/llama3, mlp_bias, sliding
  // windows on qwen, other activations, ...) is an error naming the file and the field.
  static LlamaConfig load(const std::string& config_json_path);
  static LlamaConfig from_json_text(const std::string& text, const std::string& source);
  // A new model (llama architecture) from the config's model.init, for a tokenizer's vocabulary.
  static LlamaConfig from_init(const config::ModelInit& init, int64_t vocab_size, int64_t bos, int64_t eos);
  std::string to_json_text() const;
  // Throws a CheckpointError-like message naming `source` if the dims are inconsistent.
  void check(const std::string& source) const;
};

}  // namespace neftune::model
