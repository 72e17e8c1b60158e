// What `generate` and `eval` run on: --threads checked and capped, the device and matmul precision
// set, then the model directory's weights and tokenizer loaded.
#pragma once

#include <memory>
#include <string>

#include "trainer/model/llama.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::launch {

struct InferenceModel {
  model::LlamaModel model;
  std::unique_ptr<tok::Tokenizer> tok;
};

// `dtype` is fp32 | bf16, `device` a --device spec; UserError for a bad --threads or device.
InferenceModel load_inference_model(const std::string& dir, const std::string& dtype, const std::string& device,
                                    int threads);

}  // namespace neftune::launch
