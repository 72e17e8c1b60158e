#include "trainer/model/llama_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "trainer/io/safetensors.h"
#include "trainer/io/json_error.h"

namespace neftune::model {
namespace {

using json = nlohmann::json;

template <class T>
T get(const json& j, const char* key, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) throw io::CheckpointError(src + ": missing field '" + key + "'");
  try {
    return j[key].get<T>();
  } catch (const json::exception&) {
    throw io::CheckpointError(src + ": field '" + key + "' has the wrong type");
  }
}

template <class T>
T get_or(const json& j, const char* key, T fallback, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  return get<T>(j, key, src);
}

// HF allows a list of eos ids; the first is the one we stop on.
int64_t token_id(const json& j, const char* key, int64_t fallback, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (j[key].is_array()) {
    if (j[key].empty()) return fallback;
    return j[key][0].get<int64_t>();
  }
  return get<int64_t>(j, key, src);
}

}  // namespace

std::optional<LlamaConfig::UnitSizes> LlamaConfig::checked_unit_sizes() const {
  bool overflow = false;
  auto mul = [&](int64_t a, int64_t b) {
    int64_t r = 0;
    overflow = overflow || __builtin_mul_overflow(a, b, &r);
    return r;
  };
  auto add = [&](int64_t a, int64_t b) {
    int64_t r = 0;
    overflow = overflow || __builtin_add_overflow(a, b, &r);
    return r;
  };
  const int64_t d = hidden_size, q = mul(num_attention_heads, head_dim), kv = mul(num_key_value_heads, head_dim);
  UnitSizes u;
  u.embed = mul(vocab_size, d);
  // 2 norms, q/o projections (q x d each), k/v projections (kv x d each), gate/up/down (f x d each).
  u.layer = add(add(mul(2, d), mul(2, mul(q, d))), add(mul(2, mul(kv, d)), mul(3, mul(intermediate_size, d))));
  u.head = add(d, tie_word_embeddings ? 0 : u.embed);
  add(add(u.embed, u.head), mul(num_hidden_layers, u.layer));  // the total must fit too
  if (overflow) return std::nullopt;
  return u;
}

LlamaConfig::UnitSizes LlamaConfig::unit_sizes() const {
  const auto u = checked_unit_sizes();
  if (!u) throw std::overflow_error("LlamaConfig: the parameter count does not fit in 64 bits");
  return *u;
}

int64_t LlamaConfig::num_parameters() const {
  const UnitSizes u = unit_sizes();
  return u.embed + num_hidden_layers * u.layer + u.head;
}

LlamaConfig LlamaConfig::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw io::CheckpointError(path + ": cannot open (an HF model directory needs config.json)");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_text(ss.str(), path);
}

LlamaConfig LlamaConfig::from_json_text(const std::string& text, const std::string& src) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw io::CheckpointError(src + ": not valid JSON: " + io::json_error(e));
  }
  if (!j.is_object()) throw io::CheckpointError(src + ": expected a JSON object");
  const std::string type = get_or<std::string>(j, "model_type", "llama", src);
  if (type != "llama" && type != "mistral")
    throw io::CheckpointError(src + ": model_type '" + type + "' is not a LLaMA-family model");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    throw io::CheckpointError(src + ": rope_scaling is not supported (only plain RoPE with rope_theta)");
  if (get_or<bool>(j, "attention_bias", false, src) || get_or<bool>(j, "mlp_bias", false, src))
    throw io::CheckpointError(src + ": attention_bias/mlp_bias are not supported");
  const std::string act = get_or<std::string>(j, "hidden_act", "silu", src);
  if (act != "silu") throw io::CheckpointError(src + ": hidden_act '" + act + "' is not supported (silu only)");
  if (j.contains("sliding_window") && !j["sliding_window"].is_null())
    throw io::CheckpointError(src + ": sliding_window attention is not supported");

  LlamaConfig c;
  c.hidden_size = get<int64_t>(j, "hidden_size", src);
  c.intermediate_size = get<int64_t>(j, "intermediate_size", src);
  c.num_hidden_layers = get<int64_t>(j, "num_hidden_layers", src);
  c.num_attention_heads = get<int64_t>(j, "num_attention_heads", src);
  c.num_key_value_heads = get_or<int64_t>(j, "num_key_value_heads", c.num_attention_heads, src);
  c.head_dim = get_or<int64_t>(j, "head_dim", c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0, src);
  c.vocab_size = get<int64_t>(j, "vocab_size", src);
  c.max_position_embeddings = get_or<int64_t>(j, "max_position_embeddings", 2048, src);
  c.rms_norm_eps = get_or<double>(j, "rms_norm_eps", 1e-6, src);
  c.rope_theta = get_or<double>(j, "rope_theta", 10000.0, src);
  c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false, src);
  c.bos_token_id = token_id(j, "bos_token_id", 1, src);
  c.eos_token_id = token_id(j, "eos_token_id", 2, src);
  if (j.contains("pad_token_id") && !j["pad_token_id"].is_null()) c.pad_token_id = token_id(j, "pad_token_id", 0, src);
  c.initializer_range = get_or<double>(j, "initializer_range", 0.02, src);
  c.torch_dtype = get_or<std::string>(j, "torch_dtype", "float32", src);
  c.check(src);
  return c;
}

void LlamaConfig::check(const std::string& src) const {
  auto fail = [&](const std::string& what) { throw io::CheckpointError(src + ": " + what); };
  if (hidden_size <= 0 || intermediate_size <= 0 || num_hidden_layers <= 0 || num_attention_heads <= 0 ||
      num_key_value_heads <= 0 || head_dim <= 0 || vocab_size <= 0 || max_position_embeddings <= 0)
    fail("all sizes must be positive");
  if (num_attention_heads % num_key_value_heads != 0)
    fail("num_attention_heads (" + std::to_string(num_attention_heads) + ") must be a multiple of num_key_value_heads (" +
         std::to_string(num_key_value_heads) + ")");
  if (head_dim % 2 != 0) fail("head_dim must be even for RoPE");
  if (!checked_unit_sizes())
    fail("the parameter count does not fit in 64 bits (hidden_size " + std::to_string(hidden_size) + ", " +
         std::to_string(num_hidden_layers) + " layers, intermediate_size " + std::to_string(intermediate_size) +
         ", vocab_size " + std::to_string(vocab_size) + "): not a real model");
  if (bos_token_id < 0 || bos_token_id >= vocab_size || eos_token_id < 0 || eos_token_id >= vocab_size)
    fail("bos/eos token ids must be inside the vocabulary");
}

LlamaConfig LlamaConfig::from_init(const config::ModelInit& init, int64_t vocab_size, int64_t bos, int64_t eos) {
  LlamaConfig c;
  c.hidden_size = init.dim;
  c.intermediate_size = init.hidden_dim;
  c.num_hidden_layers = init.n_layers;
  c.num_attention_heads = init.n_heads;
  c.num_key_value_heads = init.n_kv_heads;
  c.head_dim = init.dim / init.n_heads;
  c.vocab_size = vocab_size;
  c.max_position_embeddings = init.max_seq_len;
  c.rms_norm_eps = init.norm_eps;
  c.rope_theta = init.rope_theta;
  c.tie_word_embeddings = init.tie_embeddings;
  c.bos_token_id = bos;
  c.eos_token_id = eos;
  c.initializer_range = init.init_std;
  c.check("model.init");
  return c;
}

std::string LlamaConfig::to_json_text() const {
  json j = {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"hidden_size", hidden_size},
            {"intermediate_size", intermediate_size},
            {"num_hidden_layers", num_hidden_layers},
            {"num_attention_heads", num_attention_heads},
            {"num_key_value_heads", num_key_value_heads},
            {"head_dim", head_dim},
            {"vocab_size", vocab_size},
            {"max_position_embeddings", max_position_embeddings},
            {"rms_norm_eps", rms_norm_eps},
            {"rope_theta", rope_theta},
            {"rope_scaling", nullptr},
            {"tie_word_embeddings", tie_word_embeddings},
            {"bos_token_id", bos_token_id},
            {"eos_token_id", eos_token_id},
            {"hidden_act", "silu"},
            {"attention_bias", false},
            {"mlp_bias", false},
            {"initializer_range", initializer_range},
            {"torch_dtype", torch_dtype}};
  if (pad_token_id) j["pad_token_id"] = *pad_token_id;
  return j.dump(2) + "\n";
}

}  // namespace neftune::model
