// Where a sample's tokens sit in a micro-batch: row, first column, length. A padded batch has one
// sample per row at column 0; a packed batch lays several end to end in a row.
#pragma once

#include <cstdint>

namespace neftune::data {

struct Segment {
  int64_t row = 0;
  int64_t start = 0;
  int64_t length = 0;
};

}  // namespace neftune::data
