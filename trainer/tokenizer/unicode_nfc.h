// Unicode Normalization Form C (canonical decomposition, canonical ordering, canonical composition;
// UAX #15), for the NFC normalizer of tokenizer.json (Qwen2/Qwen3). The data is generated from
// Python's unicodedata (gen_unicode_nfc.py; Unicode version in nfc_unicode_version()).
#pragma once

#include <string>
#include <string_view>

namespace neftune::tok {

// True when NFC(s) == s is certain without computing it: no code point of `s` has a non-zero combining
// class or NFC_QC No/Maybe. Almost all text passes (every code point below U+0300 does). `s` is valid UTF-8.
bool nfc_quick_check(std::string_view s);

// NFC of valid UTF-8.
std::string nfc(std::string_view s);

const char* nfc_unicode_version();

}  // namespace neftune::tok
