// The safetensors reader/writer: round trip, the real fixture, and every kind of lying header; the
// CRC-32C the writer computes as it writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "tests/test_util.h"
#include "trainer/io/crc32c.h"
#include "trainer/io/safetensors.h"

namespace neftune::io {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

// A file built by hand: 8-byte length, header text, data bytes.
std::string make_file(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\x01');
}

std::string parse_error(const std::string& bytes) {
  try {
    parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "f.safetensors");
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripPreservesValuesDtypesAndShapes) {
  TempDir dir;
  std::map<std::string, at::Tensor> t = {{"a", at::randn({3, 4})},
                                         {"b", at::randn({5}).to(at::kBFloat16)},
                                         {"c", at::arange(6, at::kLong).view({2, 3})},
                                         {"empty", at::zeros({0, 4})}};
  save_safetensors(dir / "x.safetensors", t);
  SafetensorsFile f(dir / "x.safetensors");
  EXPECT_EQ(f.header().metadata.at("format"), "pt");
  for (const auto& [name, value] : t) {
    const at::Tensor back = f.load(name);
    EXPECT_EQ(back.scalar_type(), value.scalar_type()) << name;
    EXPECT_EQ(back.sizes(), value.sizes()) << name;
    EXPECT_TRUE(at::equal(back, value)) << name;  // bit-exact: bytes are copied
  }
  EXPECT_FALSE(std::filesystem::exists(dir / ".x.safetensors.tmp"));
}

TEST(Safetensors, ReadsTheRealFixtureAsDocumented) {
  NEFTUNE_REQUIRE_FIXTURE(path, "stories260K/model.safetensors");
  SafetensorsFile f(path);
  EXPECT_EQ(f.header().data_offset, 8u + 4856u);  // header length stated in the fixture README
  EXPECT_EQ(f.header().tensors.size(), 2u + 9u * 5u);
  EXPECT_EQ(f.entry("model.embed_tokens.weight").shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(f.entry("model.layers.0.mlp.down_proj.weight").shape, (std::vector<int64_t>{64, 172}));
  EXPECT_FALSE(f.contains("lm_head.weight"));
}

TEST(Safetensors, RejectsTruncatedAndLyingFiles) {
  const std::string ok_header = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  EXPECT_EQ(parse_error(make_file(ok_header, 16)), "");
  EXPECT_THAT(parse_error("abc"), HasSubstr("too short"));
  EXPECT_THAT(parse_error(make_file(ok_header, 10)), HasSubstr("truncated"));
  std::string absurd = make_file(ok_header, 16);
  absurd[7] = 0x7f;  // header length ~ 9e18
  EXPECT_THAT(parse_error(absurd), HasSubstr("absurd"));
  std::string past_end = make_file(ok_header, 16);
  past_end[0] = static_cast<char>(200);  // longer than the file
  EXPECT_THAT(parse_error(past_end), HasSubstr("runs past the end"));
  EXPECT_THAT(parse_error(make_file("{not json", 0)), HasSubstr("not valid JSON"));
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", 4)),
              HasSubstr("unknown dtype 'F99'"));
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,4]}})", 4)),
              HasSubstr("span 4 bytes but F32 with this shape needs 12"));
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                    12)),
              HasSubstr("overlaps"));
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)),
              HasSubstr("hole"));
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,400]}})", 4)),
              HasSubstr("span 400 bytes"));
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}})", 4)),
              HasSubstr("truncated?"));
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)),
              HasSubstr("non-negative"));
  EXPECT_THAT(parse_error(make_file(
                  R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}})", 4)),
              HasSubstr("overflows"));
}

TEST(Safetensors, OpeningAMissingFileNamesIt) {
  try {
    SafetensorsFile f("/nonexistent/model.safetensors");
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/model.safetensors: cannot open"));
  }
}

// The published check values of CRC-32C: "123456789" (the CRC catalogue's check value) and the RFC 3720
// B.4 inputs (32 zero bytes, 32 0xFF bytes, bytes 0..31) with the values other implementations test.
TEST(Crc32c, MatchesThePublishedCheckValues) {
  const std::string check = "123456789";
  std::string zeros(32, '\0'), ones(32, '\xff'), ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  for (auto* f : {&crc32c_extend, &crc32c_extend_portable}) {
    EXPECT_EQ(f(0, check.data(), check.size()), 0xE3069283u);
    EXPECT_EQ(f(0, zeros.data(), 32), 0x8A9136AAu);
    EXPECT_EQ(f(0, ones.data(), 32), 0x62A8AB43u);
    EXPECT_EQ(f(0, ascending.data(), 32), 0x46DD794Eu);
  }
}

// The hardware path equals the table at every length and alignment, and extending in pieces equals one pass.
TEST(Crc32c, AnyAlignmentAndSplitGiveTheSameValue) {
  std::mt19937 rng(3);
  std::string data(4099, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 9; ++offset) {
    for (size_t len : {0ul, 1ul, 7ul, 8ul, 9ul, 63ul, 4090ul}) {
      const uint32_t ref = crc32c_extend_portable(0, data.data() + offset, len);
      EXPECT_EQ(crc32c_extend(0, data.data() + offset, len), ref) << offset << " " << len;
      const size_t cut = len / 3;
      EXPECT_EQ(crc32c_extend(crc32c_extend(0, data.data() + offset, cut), data.data() + offset + cut, len - cut), ref);
    }
  }
}

// SafetensorsWriter's running checksum is the finished file's (what checkpoints store in meta.json).
TEST(Crc32c, WriterChecksumIsTheFilesChecksum) {
  TempDir d;
  SafetensorsWriter w(d / "a.safetensors", {{"x", at::kFloat, {5, 3}}, {"y", at::kBFloat16, {7}}});
  w.write("x", at::randn({5, 3}));
  w.write("y", at::randn({7}));
  w.finish();
  const std::string bytes = test::read_file(d / "a.safetensors");
  EXPECT_EQ(w.bytes(), bytes.size());
  EXPECT_EQ(w.crc32c(), crc32c_extend_portable(0, bytes.data(), bytes.size()));
  uint64_t n = 0;
  EXPECT_EQ(crc32c_file(d / "a.safetensors", &n), w.crc32c());
  EXPECT_EQ(n, bytes.size());
  EXPECT_EQ(crc32c_text(0x0102abcdu), "crc32c:0102abcd");
}

}  // namespace
}  // namespace neftune::io
