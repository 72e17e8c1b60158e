// GPT-2's byte-level alphabet, as HF tokenizers' ByteLevel pre-tokenizer and decoder use it: each of the
// 256 bytes is written as one printable character (printable Latin-1 as itself, the other 68 bytes as
// U+0100..U+0143), so that a vocabulary of strings covers every byte sequence.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace neftune::tok::byte_level {

// The code point that stands for each byte.
const std::array<uint32_t, 256>& byte_to_char();

// The byte-level spelling of raw bytes ("Hello world" -> "HelloĠworld").
std::string encode(std::string_view bytes);

// The bytes a byte-level string spells, or nullopt when a character is outside the alphabet.
std::optional<std::string> decode(std::string_view text);
// The same, appended to `out`; false (and `out` unspecified) when a character is outside the alphabet.
bool decode_append(std::string_view text, std::string& out);

}  // namespace neftune::tok::byte_level
