// A seeded random-mutation fuzz loop over the safetensors header validator, built alone with
// AddressSanitizer and UndefinedBehaviorSanitizer (no LibTorch). Every mutated file must either parse
// into a header whose invariants hold or be rejected with a CheckpointError; anything else (another
// exception, a sanitizer report, a crash) fails.
//
//   fuzz_safetensors [iterations=30000] [seed=1]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "trainer/io/safetensors_header.h"

namespace {

using neftune::io::CheckpointError;
using neftune::io::parse_safetensors;

std::string make_valid(std::mt19937_64& rng) {
  static const char* dtypes[] = {"F32", "BF16", "F16", "I64", "U8", "BOOL", "F64"};
  static const int sizes[] = {4, 2, 2, 8, 1, 1, 8};
  const int n = 1 + static_cast<int>(rng() % 4);
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t offset = 0;
  for (int i = 0; i < n; ++i) {
    const int t = static_cast<int>(rng() % 7);
    const uint64_t a = rng() % 5, b = 1 + rng() % 7;
    const uint64_t bytes = a * b * static_cast<uint64_t>(sizes[t]);
    header += ",\"t" + std::to_string(i) + "\":{\"dtype\":\"" + dtypes[t] + "\",\"shape\":[" + std::to_string(a) + "," +
              std::to_string(b) + "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return file + header + std::string(offset, '\x5a');
}

void mutate(std::string& f, std::mt19937_64& rng) {
  const int kind = static_cast<int>(rng() % 7);
  auto pos = [&](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); };
  switch (kind) {
    case 0:  // flip bytes
      for (int k = 1 + static_cast<int>(rng() % 8); k > 0 && !f.empty(); --k)
        f[pos(f.size())] ^= static_cast<char>(1 << (rng() % 8));
      break;
    case 1:  // truncate
      f.resize(pos(f.size() + 1));
      break;
    case 2: {  // lie about the header length
      const uint64_t len = rng() % 3 == 0 ? rng() : (rng() % 4096);
      for (int i = 0; i < 8 && i < static_cast<int>(f.size()); ++i) f[i] = static_cast<char>((len >> (8 * i)) & 0xff);
      break;
    }
    case 3:  // insert bytes in the header region
      f.insert(std::min(f.size(), 8 + pos(64)), std::string(1 + pos(8), static_cast<char>(rng())));
      break;
    case 4:  // delete bytes
      if (f.size() > 9) f.erase(8 + pos(f.size() - 8), 1 + pos(8));
      break;
    case 5: {  // replace a digit run with an extreme number
      const size_t p = f.find_first_of("0123456789", 8 + pos(f.size() > 8 ? f.size() - 8 : 1));
      static const char* numbers[] = {"18446744073709551615", "-1",   "9223372036854775808",    "0",
                                      "4294967296",           "1e30", "99999999999999999999999"};
      if (p != std::string::npos && p < f.size()) f.replace(p, 1, numbers[rng() % 7]);
      break;
    }
    default: {  // swap a dtype or duplicate the first entry
      const size_t p = f.find("\"F32\"");
      if (p != std::string::npos) f.replace(p, 5, rng() % 2 ? "\"Q7\"" : "\"U64\"");
      break;
    }
  }
}

bool invariants_hold(const neftune::io::SafetensorsHeader& h, size_t size) {
  uint64_t expected = 0;
  for (const auto& e : h.tensors) {
    if (e.begin != expected || e.end < e.begin) return false;
    expected = e.end;
  }
  return h.data_offset <= size && expected == size - h.data_offset;
}

}  // namespace

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 30000;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  std::mt19937_64 rng(seed);
  long accepted = 0, rejected = 0;
  for (long i = 0; i < iterations; ++i) {
    std::string f = make_valid(rng);
    const int rounds = static_cast<int>(rng() % 4);  // 0 rounds: the valid file itself must parse
    for (int r = 0; r < rounds; ++r) mutate(f, rng);
    try {
      const auto h = parse_safetensors(reinterpret_cast<const uint8_t*>(f.data()), f.size(), "fuzz");
      if (!invariants_hold(h, f.size())) {
        std::fprintf(stderr, "iteration %ld: accepted a header whose invariants do not hold\n", i);
        return 1;
      }
      ++accepted;
    } catch (const CheckpointError&) {
      if (rounds == 0) {
        std::fprintf(stderr, "iteration %ld: rejected an unmutated valid file\n", i);
        return 1;
      }
      ++rejected;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "iteration %ld: unexpected exception: %s\n", i, e.what());
      return 1;
    }
  }
  std::printf("fuzz_safetensors: %ld iterations (seed %llu): %ld accepted, %ld rejected, no crash\n", iterations,
              static_cast<unsigned long long>(seed), accepted, rejected);
  return 0;
}
