#include "trainer/model/llama_config.h"

#include <array>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "trainer/io/file_read.h"
#include "trainer/io/json_error.h"
#include "trainer/io/safetensors.h"

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

constexpr std::array<std::pair<ModelType, const char*>, 4> kModelTypes = {{{ModelType::llama, "llama"},
                                                                           {ModelType::mistral, "mistral"},
                                                                           {ModelType::qwen2, "qwen2"},
                                                                           {ModelType::qwen3, "qwen3"}}};
constexpr std::array<std::pair<ModelType, const char*>, 4> kArchitectures = {
    {{ModelType::llama, "LlamaForCausalLM"},
     {ModelType::mistral, "MistralForCausalLM"},
     {ModelType::qwen2, "Qwen2ForCausalLM"},
     {ModelType::qwen3, "Qwen3ForCausalLM"}}};

// model_type decides, as it does for HF's AutoConfig; without it, the architecture's name; without
// either, llama.
ModelType parse_model_type(const json& j, const std::string& src) {
  if (j.contains("model_type") && !j["model_type"].is_null()) {
    const std::string t = get<std::string>(j, "model_type", src);
    for (const auto& [type, name] : kModelTypes)
      if (t == name) return type;
    throw io::CheckpointError(src + ": model_type '" + t + "' is not supported (llama, mistral, qwen2, qwen3 are)");
  }
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty()) {
    const json& a = j["architectures"][0];
    for (const auto& [type, name] : kArchitectures)
      if (a.is_string() && a.get<std::string>() == name) return type;
    throw io::CheckpointError(
        src + ": no model_type, and architectures " + j["architectures"].dump() +
        " is not one of LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM");
  }
  return ModelType::llama;
}

// config.json rope_scaling (or transformers 5's rope_parameters): the type under "rope_type" or the
// older key "type"; "default" is plain RoPE.
RopeScaling parse_rope_scaling(const json& r, const std::string& src) {
  const char* key = r.contains("rope_type") ? "rope_type" : "type";
  if (!r.contains(key)) throw io::CheckpointError(src + ": missing field 'rope_type'");
  const std::string t = get<std::string>(r, key, src);
  RopeScaling s;
  if (t == "default") return s;
  if (t == "linear") {
    s.type = RopeScaling::Type::linear;
    s.factor = get<double>(r, "factor", src);
  } else if (t == "llama3") {
    s.type = RopeScaling::Type::llama3;
    s.factor = get<double>(r, "factor", src);
    s.low_freq_factor = get<double>(r, "low_freq_factor", src);
    s.high_freq_factor = get<double>(r, "high_freq_factor", src);
    s.original_max_position_embeddings = get<int64_t>(r, "original_max_position_embeddings", src);
  } else {
    throw io::CheckpointError(src + ": " + key + " '" + t +
                              "' is not supported (default, linear and llama3 are; the others change attention "
                              "in ways this implementation does not compute)");
  }
  return s;
}

}  // namespace

const char* model_type_name(ModelType t) {
  for (const auto& [type, name] : kModelTypes)
    if (type == t) return name;
  return "?";
}

const char* architecture_name(ModelType t) {
  for (const auto& [type, name] : kArchitectures)
    if (type == t) return name;
  return "?";
}

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
  // 2 norms, q/o projections (q x d each), k/v projections (kv x d each), gate/up/down (f x d each);
  // then the optional q/k/v biases (q + 2 kv), o_proj bias (d) and q/k norms (head_dim each).
  u.layer = add(add(mul(2, d), mul(2, mul(q, d))), add(mul(2, mul(kv, d)), mul(3, mul(intermediate_size, d))));
  if (qkv_bias()) u.layer = add(u.layer, add(q, mul(2, kv)));
  if (o_bias()) u.layer = add(u.layer, d);
  if (qk_norm()) u.layer = add(u.layer, mul(2, head_dim));
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
  return from_json_text(io::read_input_as<io::CheckpointError>(
                            path, io::Input::json, "model config (an HF model directory needs config.json)"),
                        path);
}

LlamaConfig LlamaConfig::from_json_text(const std::string& text, const std::string& src) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw io::CheckpointError(src + ": not valid JSON: " + io::json_error(e));
  }
  if (!j.is_object()) throw io::CheckpointError(src + ": expected a JSON object");
  auto refuse = [&](const std::string& what) -> void { throw io::CheckpointError(src + ": " + what); };
  auto present = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };

  LlamaConfig c;
  c.model_type = parse_model_type(j, src);
  const std::string type = model_type_name(c.model_type);
  const bool qwen = c.model_type == ModelType::qwen2 || c.model_type == ModelType::qwen3;

  const std::string act = get_or<std::string>(j, "hidden_act", "silu", src);
  if (act != "silu") refuse("hidden_act '" + act + "' is not supported (silu only)");
  if (get_or<bool>(j, "mlp_bias", false, src)) refuse("mlp_bias: true is not supported (no MLP biases)");
  c.attention_bias = get_or<bool>(j, "attention_bias", false, src);
  if (c.attention_bias && (c.model_type == ModelType::mistral || c.model_type == ModelType::qwen2)) {
    refuse("attention_bias: true on model_type '" + type + "', which has no such field (" +
           (c.model_type == ModelType::qwen2 ? "qwen2 always has q/k/v_proj biases and none on o_proj"
                                             : "mistral has no attention biases") +
           ")");
  }
  if (get_or<double>(j, "attention_dropout", 0.0, src) != 0.0)
    refuse("attention_dropout must be 0 (attention dropout is not implemented)");
  if (get_or<double>(j, "partial_rotary_factor", 1.0, src) != 1.0)
    refuse("partial_rotary_factor must be 1 (RoPE rotates the whole head)");
  if (present("layer_types")) {
    const json& lt = j["layer_types"];
    if (!lt.is_array()) refuse("field 'layer_types' has the wrong type");
    for (const auto& t : lt) {
      if (!t.is_string() || t.get<std::string>() != "full_attention")
        refuse("layer_types: only \"full_attention\" layers are supported (found " + t.dump() + ")");
    }
  }
  if (c.model_type == ModelType::mistral) {
    if (!j.contains("sliding_window")) {
      c.sliding_window = 4096;  // HF's MistralConfig default (Mistral 7B v0.1); null = none
    } else if (present("sliding_window")) {
      c.sliding_window = get<int64_t>(j, "sliding_window", src);
      if (*c.sliding_window <= 0)
        refuse("sliding_window must be > 0 or null (got " + std::to_string(*c.sliding_window) + ")");
    }
  } else if (qwen) {
    // HF's Qwen configs carry a sliding_window that is unused while use_sliding_window is false.
    if (get_or<bool>(j, "use_sliding_window", false, src)) {
      refuse("use_sliding_window: true is not supported for " + type +
             " (its window applies only to layers from max_window_layers on)");
    }
  } else if (present("sliding_window")) {
    refuse("sliding_window is not a field of model_type '" + type + "' (only mistral has sliding-window attention)");
  }

  c.hidden_size = get<int64_t>(j, "hidden_size", src);
  c.intermediate_size = get<int64_t>(j, "intermediate_size", src);
  c.num_hidden_layers = get<int64_t>(j, "num_hidden_layers", src);
  c.num_attention_heads = get<int64_t>(j, "num_attention_heads", src);
  c.num_key_value_heads = get_or<int64_t>(j, "num_key_value_heads", c.num_attention_heads, src);
  // HF's Qwen3Config defaults head_dim to 128; the others to hidden_size / num_attention_heads.
  const int64_t default_head_dim = c.model_type == ModelType::qwen3 ? 128
                                   : c.num_attention_heads > 0      ? c.hidden_size / c.num_attention_heads
                                                                    : 0;
  c.head_dim = get_or<int64_t>(j, "head_dim", default_head_dim, src);
  c.vocab_size = get<int64_t>(j, "vocab_size", src);
  // HF's class defaults when absent.
  const int64_t default_positions = c.model_type == ModelType::llama     ? 2048
                                    : c.model_type == ModelType::mistral ? 4096 * 32
                                                                         : 32768;
  c.max_position_embeddings = get_or<int64_t>(j, "max_position_embeddings", default_positions, src);
  c.rms_norm_eps = get_or<double>(j, "rms_norm_eps", 1e-6, src);
  c.rope_theta = get_or<double>(j, "rope_theta", 10000.0, src);
  // transformers 5 writes rope_theta and the scaling together as rope_parameters.
  const char* rope_key = present("rope_parameters") ? "rope_parameters" : "rope_scaling";
  if (present(rope_key)) {
    if (!j[rope_key].is_object()) refuse("field '" + std::string(rope_key) + "' has the wrong type");
    if (std::string(rope_key) == "rope_parameters")
      c.rope_theta = get_or<double>(j[rope_key], "rope_theta", c.rope_theta, src + ": rope_parameters");
    c.rope_scaling = parse_rope_scaling(j[rope_key], src + ": " + rope_key);
  }
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
  if (num_attention_heads % num_key_value_heads != 0) {
    fail("num_attention_heads (" + std::to_string(num_attention_heads) +
         ") must be a multiple of num_key_value_heads (" + std::to_string(num_key_value_heads) + ")");
  }
  if (head_dim % 2 != 0) fail("head_dim must be even for RoPE");
  if (!(rope_theta > 0 && std::isfinite(rope_theta))) fail("rope_theta must be > 0");
  if (!(rms_norm_eps > 0 && std::isfinite(rms_norm_eps))) fail("rms_norm_eps must be > 0");
  const RopeScaling& r = rope_scaling;
  if (r.type != RopeScaling::Type::none && !(r.factor > 0 && std::isfinite(r.factor)))
    fail("rope_scaling.factor must be > 0");
  if (r.type == RopeScaling::Type::llama3 &&
      !(r.low_freq_factor > 0 && r.high_freq_factor > r.low_freq_factor && std::isfinite(r.high_freq_factor) &&
        r.original_max_position_embeddings > 0))
    fail("rope_scaling (llama3) needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0");
  if (sliding_window && (model_type != ModelType::mistral || *sliding_window <= 0))
    fail("sliding_window must be > 0, and only on mistral");
  if (attention_bias && model_type != ModelType::llama && model_type != ModelType::qwen3)
    fail("attention_bias only on llama and qwen3");
  if (!checked_unit_sizes()) {
    fail("the parameter count does not fit in 64 bits (hidden_size " + std::to_string(hidden_size) + ", " +
         std::to_string(num_hidden_layers) + " layers, intermediate_size " + std::to_string(intermediate_size) +
         ", vocab_size " + std::to_string(vocab_size) + "): not a real model");
  }
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
  const config::RopeScalingInit& rs = init.rope_scaling;
  if (rs.type != config::RopeScalingType::none) {
    c.rope_scaling.type =
        rs.type == config::RopeScalingType::linear ? RopeScaling::Type::linear : RopeScaling::Type::llama3;
    c.rope_scaling.factor = rs.factor;
    if (rs.type == config::RopeScalingType::llama3) {
      c.rope_scaling.low_freq_factor = rs.low_freq_factor;
      c.rope_scaling.high_freq_factor = rs.high_freq_factor;
      c.rope_scaling.original_max_position_embeddings = rs.original_context;
    }
  }
  c.tie_word_embeddings = init.tie_embeddings;
  c.bos_token_id = bos;
  c.eos_token_id = eos;
  c.initializer_range = init.init_std;
  c.check("model.init");
  return c;
}

std::string LlamaConfig::to_json_text() const {
  json rope = nullptr;
  if (rope_scaling.type == RopeScaling::Type::linear) {
    rope = {{"rope_type", "linear"}, {"factor", rope_scaling.factor}};
  } else if (rope_scaling.type == RopeScaling::Type::llama3) {
    rope = {{"rope_type", "llama3"},
            {"factor", rope_scaling.factor},
            {"low_freq_factor", rope_scaling.low_freq_factor},
            {"high_freq_factor", rope_scaling.high_freq_factor},
            {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  }
  json j = {{"architectures", {architecture_name(model_type)}},
            {"model_type", model_type_name(model_type)},
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
            {"rope_scaling", rope},
            {"tie_word_embeddings", tie_word_embeddings},
            {"bos_token_id", bos_token_id},
            {"eos_token_id", eos_token_id},
            {"hidden_act", "silu"},
            {"initializer_range", initializer_range},
            {"torch_dtype", torch_dtype}};
  // Each family's own fields, as its HF config class names them.
  switch (model_type) {
    case ModelType::llama:
      j["attention_bias"] = attention_bias;
      j["mlp_bias"] = false;
      break;
    case ModelType::mistral:
      j["sliding_window"] = sliding_window ? json(*sliding_window) : json(nullptr);
      break;
    case ModelType::qwen2:
      j["use_sliding_window"] = false;
      j["sliding_window"] = nullptr;
      break;
    case ModelType::qwen3:
      j["attention_bias"] = attention_bias;
      j["use_sliding_window"] = false;
      j["sliding_window"] = nullptr;
      break;
  }
  if (pad_token_id) j["pad_token_id"] = *pad_token_id;
  return j.dump(2) + "\n";
}

}  // namespace neftune::model
