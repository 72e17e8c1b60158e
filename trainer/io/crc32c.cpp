#include "trainer/io/crc32c.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "config/errors.h"
#include "trainer/io/file_read.h"

namespace neftune::io {
namespace {

constexpr uint32_t kPolyReflected = 0x82F63B78u;

std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kPolyReflected : c >> 1;
    t[i] = c;
  }
  return t;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t extend_sse42(uint32_t crc, const unsigned char* p, size_t n) {
  uint64_t c = ~crc;
  for (; n > 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0; --n)
    c = __builtin_ia32_crc32qi(static_cast<uint32_t>(c), *p++);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  for (; n > 0; --n) c = __builtin_ia32_crc32qi(static_cast<uint32_t>(c), *p++);
  return ~static_cast<uint32_t>(c);
}
#endif

}  // namespace

uint32_t crc32c_extend_portable(uint32_t crc, const void* data, size_t n) {
  static const std::array<uint32_t, 256> kTable = make_table();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; ++i) c = kTable[(c ^ p[i]) & 0xffu] ^ (c >> 8);
  return ~c;
}

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n) {
#if defined(__x86_64__)
  static const bool kHw = __builtin_cpu_supports("sse4.2");
  if (kHw) return extend_sse42(crc, static_cast<const unsigned char*>(data), n);
#endif
  return crc32c_extend_portable(crc, data, n);
}

uint32_t crc32c_file(const std::string& path, uint64_t* bytes) {
  int fd = -1;
  try {
    fd = InputFile(path, Input::weights, "checkpoint file").release();
  } catch (const InputError& e) {
    throw CheckpointError(e.what());
  }
  std::vector<unsigned char> buf(8u << 20);
  uint32_t crc = 0;
  uint64_t total = 0;
  for (;;) {
    const ssize_t r = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(total));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw CheckpointError(path + ": read failed: " + why);
    }
    if (r == 0) break;
    crc = crc32c_extend(crc, buf.data(), static_cast<size_t>(r));
    total += static_cast<uint64_t>(r);
  }
  ::close(fd);
  if (bytes) *bytes = total;
  return crc;
}

std::string crc32c_text(uint32_t crc) {
  char b[24];
  std::snprintf(b, sizeof b, "crc32c:%08x", crc);
  return b;
}

}  // namespace neftune::io
