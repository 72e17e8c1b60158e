// The Unicode data behind unicode_nfc.cpp, generated into unicode_nfc_tables.cpp by gen_unicode_nfc.py.
#pragma once

#include <cstddef>
#include <cstdint>

namespace neftune::tok::nfc_data {

struct CccRange {
  uint32_t first, last, ccc;
};
struct Decomposition {
  uint32_t cp, first, second;  // second = 0: a singleton
};
struct Composition {
  uint32_t first, second, composite;
};
struct Range {
  uint32_t first, last;
};

extern const char* const kUnicodeVersion;
extern const CccRange kCcc[];  // sorted, disjoint
extern const size_t kCccCount;
extern const Decomposition kDecompositions[];  // sorted by cp
extern const size_t kDecompositionCount;
extern const Composition kCompositions[];  // sorted by (first, second)
extern const size_t kCompositionCount;
extern const Range kQuickCheckNotYes[];  // sorted, disjoint
extern const size_t kQuickCheckNotYesCount;

}  // namespace neftune::tok::nfc_data
