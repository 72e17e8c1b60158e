#include "trainer/tokenizer/byte_level.h"

#include "trainer/tokenizer/utf8.h"

namespace neftune::tok::byte_level {
namespace {

// bytes_to_unicode() of GPT-2's encoder.py.
std::array<uint32_t, 256> make_byte_to_char() {
  std::array<uint32_t, 256> map{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    map[b] = printable ? b : next++;
  }
  return map;
}

// The inverse, for code points below U+0144 (every character of the alphabet); -1 elsewhere.
std::array<int16_t, 0x144> make_char_to_byte() {
  std::array<int16_t, 0x144> inv{};
  inv.fill(-1);
  const auto& map = byte_to_char();
  for (int b = 0; b < 256; ++b) inv[map[b]] = static_cast<int16_t>(b);
  return inv;
}

}  // namespace

const std::array<uint32_t, 256>& byte_to_char() {
  static const std::array<uint32_t, 256> kMap = make_byte_to_char();
  return kMap;
}

std::string encode(std::string_view bytes) {
  const auto& map = byte_to_char();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) utf8::append(out, map[static_cast<unsigned char>(c)]);
  return out;
}

bool decode_append(std::string_view text, std::string& out) {
  static const std::array<int16_t, 0x144> kInv = make_char_to_byte();
  if (utf8::find_invalid(text) != std::string_view::npos) return false;
  for (size_t i = 0; i < text.size();) {
    const uint32_t cp = utf8::decode(text, i);
    if (cp >= kInv.size() || kInv[cp] < 0) return false;
    out.push_back(static_cast<char>(kInv[cp]));
  }
  return true;
}

std::optional<std::string> decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  if (!decode_append(text, out)) return std::nullopt;
  return out;
}

}  // namespace neftune::tok::byte_level
