// bench_train --data alpaca: real (unpadded) tokens per second of the Trainer on the Alpaca fixture
// with the Llama 2 tokenizer, against a plain LibTorch loop written the way users write it.
#pragma once

#include <string>

#include "bench/bench_util.h"
#include "distributed/world.h"

namespace neftune::bench {

struct AlpacaBenchOptions {
  std::string shared_dir;  // holds fixtures/instructions/alpaca_data_200.json, fixtures/llama2-tokenizer/
  std::string dtype = "fp32";
  int steps = 8;
  ModelDims dims;
  int64_t max_seq_len = 512;
  int64_t batch = 8;
};

// Prints one JSON object; returns the process exit code.
int run_alpaca_bench(const AlpacaBenchOptions& o, dist::World& world);

}  // namespace neftune::bench
