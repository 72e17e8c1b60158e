// Instruction records from Alpaca (instruction/input/output) and Dolly (instruction/context/response)
// files: a JSON array or JSONL. Malformed records are errors naming the file and record (or skipped and
// counted when data.on_malformed is skip).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/errors.h"
#include "config/train_config.h"

namespace neftune::data {

class DataError : public UserError {
 public:
  using UserError::UserError;
};

struct Record {
  std::string instruction;
  std::string input;   // Alpaca "input" / Dolly "context"; may be empty
  std::string output;  // Alpaca "output" / Dolly "response"
};

struct ReadStats {
  int64_t records = 0;
  int64_t skipped_malformed = 0;
};

std::vector<Record> read_records(const std::string& path, config::DataFormat format, config::OnMalformed on_malformed,
                                 ReadStats* stats = nullptr);

}  // namespace neftune::data
