// safetensors reader and writer (https://github.com/huggingface/safetensors, format v0): an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
// then the raw little-endian tensor bytes. The reader validates everything before touching data:
// header length, JSON, dtypes, shapes, offsets in bounds, sizes consistent, no overlaps and no holes.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "trainer/io/file_write.h"
#include "trainer/io/safetensors_header.h"

namespace neftune::io {

// Bytes per element of a safetensors dtype name; 0 if unknown.
at::ScalarType to_scalar_type(const std::string& dtype, const std::string& context);
std::string from_scalar_type(at::ScalarType t);

// A memory-mapped, validated safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const TensorEntry& entry(const std::string& name) const;
  // A new CPU tensor with the stored dtype and shape (copied out of the mapping).
  at::Tensor load(const std::string& name) const;
  // Values [begin, begin + count) of the flattened tensor, as a 1-D CPU tensor of the stored dtype.
  at::Tensor load_range(const std::string& name, int64_t begin, int64_t count) const;
  // The same values written into `dst` (count elements, any dtype and device); a straight copy out of
  // the mapping when dst is a contiguous CPU tensor of the stored dtype.
  void read_range_into(const std::string& name, int64_t begin, int64_t count, const at::Tensor& dst) const;

 private:
  std::string path_;
  int fd_ = -1;  // kept open for pread (bulk reads without faulting the mapping page by page)
  void* map_ = nullptr;
  size_t size_ = 0;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
};

// Streams a safetensors file: the header is written from the declared entries, then each tensor in
// the declared order. The file appears at `path` only after finish() (through an AtomicFileWriter), so
// a crash never leaves a half-written file under the final name; a failed write is an io::WriteError.
class SafetensorsWriter {
 public:
  struct Decl {
    std::string name;
    at::ScalarType dtype;
    std::vector<int64_t> shape;
  };
  SafetensorsWriter(std::string path, std::vector<Decl> tensors,
                    const std::map<std::string, std::string>& metadata = {});
  void write(const std::string& name, const at::Tensor& value);  // converted to the declared dtype
  void finish();
  // The CRC-32C and size of every byte written so far (the whole file after finish()).
  uint32_t crc32c() const { return crc_; }
  uint64_t bytes() const { return out_.bytes(); }

 private:
  void append(const void* data, size_t n);

  AtomicFileWriter out_;
  std::vector<Decl> decls_;
  size_t next_ = 0;
  uint32_t crc_ = 0;
};

// Writes all `tensors` (name -> tensor) to one file, sorted by name, like HF's save_file.
void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace neftune::io
