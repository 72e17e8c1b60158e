// The Alpaca prompt template, used identically in training and in `neftune generate`. The prompt ends
// with "### Response:\n" and the response follows it directly; the model learns to end with EOS.
#pragma once

#include <string>

namespace neftune::data {

std::string format_prompt(const std::string& instruction, const std::string& input);

// The tail every prompt ends with; truncation never cuts it.
inline constexpr const char* kResponseTail = "\n\n### Response:\n";

}  // namespace neftune::data
