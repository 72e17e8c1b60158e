// The largest config or job file neftune reads. A real one is a few KB; YAML parsing needs up to ~250
// times a file's size in memory (a long list of short values), so anything bigger is refused before it
// is parsed: at this limit the worst case is about 250 MB and under a second.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace neftune::config {

inline constexpr size_t kMaxConfigBytes = size_t{1} << 20;  // 1 MiB

// "4 MiB", "4.0 MiB (4194305 bytes)" or "812 bytes", for error messages.
inline std::string format_size(uint64_t bytes) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  if (bytes < kMiB) return std::to_string(bytes) + " bytes";
  if (bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB (%llu bytes)", static_cast<double>(bytes) / static_cast<double>(kMiB),
                static_cast<unsigned long long>(bytes));
  return buf;
}

}  // namespace neftune::config
