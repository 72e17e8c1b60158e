// Validation of safetensors headers (format v0), with no LibTorch dependency: the fuzz test builds it
// alone under sanitizers. A file is an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw tensor bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/errors.h"  // CheckpointError

namespace neftune::io {

struct TensorEntry {
  std::string name;
  std::string dtype;  // "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;  // sorted by begin offset
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;  // 8 + header length
};

// Validates the first `size` bytes of a file as a safetensors file; `path` names it in errors.
// Throws CheckpointError on anything wrong. Exposed for the fuzz test.
SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& path);

// Bytes per element of a safetensors dtype name; 0 if unknown.
size_t dtype_size(const std::string& dtype);

// Throws CheckpointError("PATH: WHAT"): a safetensors file that cannot be read as one.
[[noreturn]] void bad_file(const std::string& path, const std::string& what);

}  // namespace neftune::io
