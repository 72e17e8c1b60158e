#include "trainer/tokenizer/utf8.h"

namespace neftune::tok::utf8 {

std::string lossy(std::string_view s) {
  if (find_invalid(s) == std::string_view::npos) return std::string(s);
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  std::string out;
  out.reserve(n + 8);
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // The valid range of the second byte depends on the first (Unicode Table 3-7).
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    // The maximal prefix of a valid sequence becomes one U+FFFD.
    size_t k = 1;
    if (len > 0) {
      while (k < len && i + k < n) {
        const unsigned char b = p[i + k];
        const bool ok = k == 1 ? (b >= lo && b <= hi) : (b & 0xC0) == 0x80;
        if (!ok) break;
        ++k;
      }
    }
    if (len > 0 && k == len) {
      out.append(s.substr(i, len));
    } else {
      out.append("\xEF\xBF\xBD");
    }
    i += k;
  }
  return out;
}

}  // namespace neftune::tok::utf8
