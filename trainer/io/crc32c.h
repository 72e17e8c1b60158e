// CRC-32C (Castagnoli, the iSCSI/ext4 polynomial 0x1EDC6F41, reflected), the checksum stored for
// each checkpoint shard file. SSE4.2's crc32 instruction where the CPU has it (several GB/s),
// a table otherwise; both give the same value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace neftune::io {

// Continues a CRC-32C: crc32c_extend(crc32c_extend(0, a), b) == crc32c of a followed by b.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
// The table implementation alone (the reference the hardware path is tested against).
uint32_t crc32c_extend_portable(uint32_t crc, const void* data, size_t n);

// The CRC-32C of a whole file, read with pread in large blocks. Throws CheckpointError naming the
// file when it cannot be read.
uint32_t crc32c_file(const std::string& path, uint64_t* bytes = nullptr);

// "crc32c:1a2b3c4d": how checksums are written in meta.json.
std::string crc32c_text(uint32_t crc);

}  // namespace neftune::io
