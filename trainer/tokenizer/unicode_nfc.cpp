#include "trainer/tokenizer/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "trainer/tokenizer/unicode_nfc_tables.h"
#include "trainer/tokenizer/utf8.h"

namespace neftune::tok {
namespace {

using namespace nfc_data;

// Hangul syllables decompose and compose algorithmically (Unicode 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint32_t combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  const CccRange* end = kCcc + kCccCount;
  const CccRange* it = std::upper_bound(kCcc, end, cp, [](uint32_t c, const CccRange& r) { return c < r.first; });
  if (it == kCcc) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* end = kDecompositions + kDecompositionCount;
  const Decomposition* it =
      std::lower_bound(kDecompositions, end, cp, [](const Decomposition& d, uint32_t c) { return d.cp < c; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  decompose(it->first, out);
  if (it->second != 0) decompose(it->second, out);
}

// The primary composite of (a, b), or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const Composition* end = kCompositions + kCompositionCount;
  const Composition* it =
      std::lower_bound(kCompositions, end, std::pair{a, b}, [](const Composition& c, const auto& key) {
        return c.first < key.first || (c.first == key.first && c.second < key.second);
      });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

bool quick_check_no(uint32_t cp) {
  const Range* end = kQuickCheckNotYes + kQuickCheckNotYesCount;
  const Range* it =
      std::upper_bound(kQuickCheckNotYes, end, cp, [](uint32_t c, const Range& r) { return c < r.first; });
  return it != kQuickCheckNotYes && cp <= (it - 1)->last;
}

}  // namespace

bool nfc_quick_check(std::string_view s) {
  size_t i = 0;
  // Lead bytes below 0xCC start code points below U+0300, which are all NFC_QC Yes with class 0.
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0xCC) ++i;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0xCC) {
      ++i;
      continue;
    }
    if (quick_check_no(utf8::decode(s, i))) return false;
  }
  return true;
}

std::string nfc(std::string_view s) {
  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) decompose(utf8::decode(s, i), cps);

  // Canonical ordering: each run of non-starters sorted (stably) by combining class.
  std::vector<uint32_t> ccc(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) ccc[i] = combining_class(cps[i]);
  for (size_t i = 1; i < cps.size(); ++i) {
    for (size_t k = i; k > 0 && ccc[k] != 0 && ccc[k - 1] > ccc[k]; --k) {
      std::swap(ccc[k], ccc[k - 1]);
      std::swap(cps[k], cps[k - 1]);
    }
  }

  // Canonical composition (the UAX #15 sample algorithm): a character joins the last starter unless a
  // character of the same or higher class, or a starter, stands between them.
  if (!cps.empty()) {
    size_t starter = 0, out = 1;
    uint32_t last_class = ccc[0] == 0 ? 0 : 256;
    for (size_t i = 1; i < cps.size(); ++i) {
      const uint32_t c = cps[i], cc = ccc[i];
      const uint32_t composite = last_class < cc || last_class == 0 ? compose(cps[starter], c) : 0;
      if (composite != 0) {
        cps[starter] = composite;
        continue;
      }
      if (cc == 0) starter = out;
      last_class = cc;
      cps[out++] = c;
    }
    cps.resize(out);
  }
  std::string result;
  result.reserve(s.size());
  for (const uint32_t cp : cps) utf8::append(result, cp);
  return result;
}

const char* nfc_unicode_version() { return nfc_data::kUnicodeVersion; }

}  // namespace neftune::tok
