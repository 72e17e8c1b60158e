// Text generation with a KV cache: greedy (temperature 0) or temperature + top-p sampling, with an
// optional CTRL-style repetition penalty over the prompt and the tokens generated so far (as HF's
// RepetitionPenaltyLogitsProcessor; the NEFTune paper decodes greedily with 1.2).
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/model/llama.h"

namespace neftune::run {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  double temperature = 0.0;  // 0 = greedy
  double top_p = 1.0;
  double repetition_penalty = 1.0;  // 1 = off
  uint64_t seed = 0;
};

// The new tokens after `prompt` (EOS, if produced, is the last one and is included).
std::vector<int32_t> generate(const model::LlamaModel& model, const std::vector<int32_t>& prompt,
                              const GenerateOptions& options, int32_t eos_id);

}  // namespace neftune::run
