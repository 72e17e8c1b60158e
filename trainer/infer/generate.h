// Text generation with a KV cache: greedy (temperature 0) or temperature + top-p sampling, with an
// optional CTRL-style repetition penalty over the prompt and the tokens generated so far (as HF's
// RepetitionPenaltyLogitsProcessor; the NEFTune paper decodes greedily with 1.2).
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/model/llama.h"

namespace neftune::run {

struct GenerateOptions {
  int64_t max_new_tokens = 128;     // 1 .. kMaxNewTokens
  double temperature = 0.0;         // >= 0; 0 = greedy
  double top_p = 1.0;               // (0, 1]
  double repetition_penalty = 1.0;  // > 0; 1 = off
  uint64_t seed = 0;
};

inline constexpr int64_t kMaxNewTokens = 1 << 20;

// Throws UserError naming the option (--max-new-tokens, --temperature, --top-p, --repetition-penalty)
// and its valid range for any value outside it (NaN and infinities included).
void check_generate_options(const GenerateOptions& options);

// The new tokens after `prompt` (EOS, if produced, is the last one and is included). Checks `options`
// first (check_generate_options), and that the KV cache fits the host memory.
std::vector<int32_t> generate(const model::LlamaModel& model, const std::vector<int32_t>& prompt,
                              const GenerateOptions& options, int32_t eos_id);
// The same, stopping at any of `stop_ids` (EOS and a chat template's end-of-turn token); the stop token
// produced is the last one.
std::vector<int32_t> generate(const model::LlamaModel& model, const std::vector<int32_t>& prompt,
                              const GenerateOptions& options, const std::vector<int32_t>& stop_ids);

}  // namespace neftune::run
