// Tokenizer throughput on the Alpaca fixture: Llama 3's tokenizer.json (byte-level BPE, neftune's own
// implementation) against Llama 2's tokenizer.model (libsentencepiece), measured in the same run, and
// the load time of the 9 MB Llama 3 tokenizer.json. Rounds of the two alternate; medians are reported.
// "cold" is the first pass of a freshly loaded tokenizer (its piece cache empty), "warm" a later pass.
//
//   build/bin/bench_tokenize [--shared ../shared] [--rounds 5] [--passes 10]
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "trainer/tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using namespace neftune;
using bench::Clock;
using bench::median;
using bench::seconds_since;

namespace {

struct Pass {
  double seconds = 0;
  int64_t tokens = 0;
};

Pass encode_all(const tok::Tokenizer& t, const std::vector<std::string>& texts) {
  Pass p;
  const auto t0 = Clock::now();
  for (const std::string& s : texts) p.tokens += static_cast<int64_t>(t.encode(s, true).size());
  p.seconds = seconds_since(t0);
  return p;
}

}  // namespace

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): a failure ends a benchmark with its message
  CLI::App app{"tokenizer throughput: Llama 3 tokenizer.json vs Llama 2 sentencepiece on the Alpaca fixture"};
  std::string shared = std::getenv("NEFTUNE_SHARED") ? std::getenv("NEFTUNE_SHARED") : "../shared";
  int rounds = 5, passes = 10;
  app.add_option("--shared", shared, "the shared directory with fixtures/")->capture_default_str();
  app.add_option("--rounds", rounds, "rounds (each: a fresh load, a cold pass, then warm passes)")
      ->capture_default_str();
  app.add_option("--passes", passes, "warm passes over the records per round")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const fs::path fixtures = fs::path(shared) / "fixtures";
  const std::string alpaca = (fixtures / "instructions/alpaca_data_200.json").string();
  const std::string llama3 = (fixtures / "modern/tokenizers/llama3/tokenizer.json").string();
  const std::string llama2 = (fixtures / "llama2-tokenizer/tokenizer.model").string();
  for (const auto& f : {alpaca, llama3, llama2}) {
    if (!fs::exists(f)) {
      std::cerr << "bench_tokenize: " << f << " not found (--shared DIR)\n";
      return 2;
    }
  }
  // Each record as the trainer sees it before templating: instruction, input and output.
  std::vector<std::string> texts;
  int64_t bytes = 0;
  for (const auto& r : nlohmann::json::parse(std::ifstream(alpaca))) {
    texts.push_back(r["instruction"].get<std::string>() + "\n\n" + r["input"].get<std::string>() + "\n\n" +
                    r["output"].get<std::string>());
    bytes += static_cast<int64_t>(texts.back().size());
  }

  std::vector<double> hf_load, sp_load, hf_cold, sp_cold, hf_warm, sp_warm;
  int64_t hf_tokens = 0, sp_tokens = 0;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = Clock::now();
    const auto hf = tok::make_hf_tokenizer(llama3);
    hf_load.push_back(seconds_since(t0));
    t0 = Clock::now();
    const auto sp = tok::make_sentencepiece_tokenizer(llama2);
    sp_load.push_back(seconds_since(t0));
    Pass p = encode_all(*hf, texts);
    hf_cold.push_back(p.tokens / p.seconds);
    hf_tokens = p.tokens;
    p = encode_all(*sp, texts);
    sp_cold.push_back(p.tokens / p.seconds);
    sp_tokens = p.tokens;
    for (int k = 0; k < passes; ++k) {
      p = encode_all(*hf, texts);
      hf_warm.push_back(p.tokens / p.seconds);
      p = encode_all(*sp, texts);
      sp_warm.push_back(p.tokens / p.seconds);
    }
  }
  const double bytes_per_hf_token = static_cast<double>(bytes) / static_cast<double>(hf_tokens);
  const double bytes_per_sp_token = static_cast<double>(bytes) / static_cast<double>(sp_tokens);
  std::cout << nlohmann::json{
                   {"records", texts.size()},
                   {"bytes", bytes},
                   {"llama3_tokens", hf_tokens},
                   {"llama2_tokens", sp_tokens},
                   {"llama3_tokenizer_json_load_s", median(hf_load)},
                   {"llama2_sentencepiece_load_s", median(sp_load)},
                   {"llama3_cold_tokens_per_s", median(hf_cold)},
                   {"llama2_cold_tokens_per_s", median(sp_cold)},
                   {"llama3_warm_tokens_per_s", median(hf_warm)},
                   {"llama2_warm_tokens_per_s", median(sp_warm)},
                   {"llama3_warm_mb_per_s", median(hf_warm) * bytes_per_hf_token / 1e6},
                   {"llama2_warm_mb_per_s", median(sp_warm) * bytes_per_sp_token / 1e6},
                   {"warm_ratio_llama3_over_llama2_bytes_per_s",
                    median(hf_warm) * bytes_per_hf_token / (median(sp_warm) * bytes_per_sp_token)},
               }
                   .dump(2)
            << '\n';
  return 0;
}
