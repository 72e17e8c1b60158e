#include "trainer/io/safetensors_header.h"
#include "trainer/io/json_error.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace neftune::io {
namespace {

using json = nlohmann::json;

// The reference implementation refuses headers over 100 MB; so do we.
constexpr uint64_t kMaxHeader = 100ull * 1024 * 1024;

bool mul_overflows(uint64_t a, uint64_t b, uint64_t& out) { return __builtin_mul_overflow(a, b, &out); }

}  // namespace

void bad_file(const std::string& path, const std::string& what) { throw CheckpointError(path + ": " + what); }

size_t dtype_size(const std::string& d) {
  static const std::map<std::string, size_t> kSizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},  {"I32", 4},     {"I16", 2},    {"I8", 1},
      {"U8", 1},  {"U16", 2}, {"U32", 4}, {"U64", 8},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  const auto it = kSizes.find(d);
  return it == kSizes.end() ? 0 : it->second;
}

SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& path) {
  if (size < 8) bad_file(path, "truncated: " + std::to_string(size) + " bytes is too short for a safetensors file");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  if (header_len > kMaxHeader) {
    bad_file(path,
             "header length " + std::to_string(header_len) + " is absurd (limit 100 MB): not a safetensors file?");
  }
  if (header_len > size - 8) {
    bad_file(path, "truncated: header length " + std::to_string(header_len) + " runs past the end of the file (" +
                       std::to_string(size) + " bytes)");
  }
  json header;
  try {
    header = json::parse(data + 8, data + 8 + header_len);
  } catch (const json::exception& e) {
    bad_file(path, "header is not valid JSON: " + json_error(e));
  }
  if (!header.is_object()) bad_file(path, "header is not a JSON object");

  SafetensorsHeader out;
  out.data_offset = 8 + header_len;
  const uint64_t data_size = size - out.data_offset;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) bad_file(path, "__metadata__ must be an object of strings");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) bad_file(path, "__metadata__." + k + " must be a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!value.is_object()) bad_file(path, where + ": entry is not an object");
    if (!value.contains("dtype") || !value["dtype"].is_string())
      bad_file(path, where + ": missing or non-string dtype");
    if (!value.contains("shape") || !value["shape"].is_array()) bad_file(path, where + ": missing or non-array shape");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      bad_file(path, where + ": data_offsets must be [begin, end]");
    TensorEntry e;
    e.name = name;
    e.dtype = value["dtype"].get<std::string>();
    const size_t esize = dtype_size(e.dtype);
    if (esize == 0) bad_file(path, where + ": unknown dtype '" + e.dtype + "'");
    uint64_t numel = 1;
    for (const auto& dim : value["shape"]) {
      if (!dim.is_number_unsigned()) bad_file(path, where + ": shape entries must be non-negative integers");
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(INT64_MAX) || mul_overflows(numel, d, numel))
        bad_file(path, where + ": shape overflows");
      e.shape.push_back(static_cast<int64_t>(d));
    }
    for (const auto& off : value["data_offsets"])
      if (!off.is_number_unsigned()) bad_file(path, where + ": data_offsets must be non-negative integers");
    e.begin = value["data_offsets"][0].get<uint64_t>();
    e.end = value["data_offsets"][1].get<uint64_t>();
    uint64_t nbytes = 0;
    if (mul_overflows(numel, esize, nbytes)) bad_file(path, where + ": byte size overflows");
    if (e.end < e.begin) bad_file(path, where + ": data_offsets end < begin");
    if (e.end - e.begin != nbytes) {
      bad_file(path, where + ": data_offsets span " + std::to_string(e.end - e.begin) + " bytes but " + e.dtype +
                         " with this shape needs " + std::to_string(nbytes));
    }
    if (e.end > data_size) {
      bad_file(path, where + ": data ends at byte " + std::to_string(e.end) + " but the file has only " +
                         std::to_string(data_size) + " data bytes (truncated?)");
    }
    out.tensors.push_back(std::move(e));
  }
  std::sort(out.tensors.begin(), out.tensors.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  uint64_t expected = 0;
  for (const auto& e : out.tensors) {
    if (e.begin < expected)
      bad_file(path, "tensor '" + e.name + "' overlaps the tensor before it (offset " + std::to_string(e.begin) + ")");
    if (e.begin > expected) {
      bad_file(path, "hole in the data section before tensor '" + e.name + "' (bytes " + std::to_string(expected) +
                         ".." + std::to_string(e.begin) + " are unused)");
    }
    expected = e.end;
  }
  if (expected != data_size) {
    bad_file(path, "data section has " + std::to_string(data_size) + " bytes but the tensors cover " +
                       std::to_string(expected) + " (trailing garbage or truncated)");
  }
  return out;
}

}  // namespace neftune::io
