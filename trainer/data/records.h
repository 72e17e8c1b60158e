// Training records from a JSON array or JSONL file: Alpaca (instruction/input/output) and Dolly
// (instruction/context/response) instructions, and ShareGPT / OpenAI messages conversations
// (conversations.h). Malformed records are errors naming the file and record (or skipped and counted
// when data.on_malformed is skip).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/errors.h"
#include "config/train_config.h"
#include "trainer/data/chat_template.h"

namespace neftune::data {

class DataError : public UserError {
 public:
  using UserError::UserError;
};

struct Record {
  std::string instruction;
  std::string input;                       // Alpaca "input" / Dolly "context"; may be empty
  std::string output;                      // Alpaca "output" / Dolly "response"
  std::vector<ChatMessage> messages = {};  // a conversation record's turns; empty for an instruction record
  int64_t index = -1;                      // the record's index in its file; -1 when not read from one
  int64_t line = 0;                        // its line in a JSONL file; 0 in a JSON array

  bool is_conversation() const { return !messages.empty(); }
};

// Where a record is, for errors: "record 12 (line 13)" from its file, else "record <position>".
std::string record_location(const Record& r, size_t position);

struct ReadStats {
  int64_t records = 0;
  int64_t skipped_malformed = 0;
  uint64_t bytes = 0;   // the file's size
  uint32_t crc32c = 0;  // and CRC-32C, which a checkpoint records to recognise the data on resume
};

std::vector<Record> read_records(const std::string& path, config::DataFormat format, config::OnMalformed on_malformed,
                                 ReadStats* stats = nullptr);

}  // namespace neftune::data
