// The safetensors reader/writer: round trip, the real fixture, and every kind of lying header.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "tests/test_util.h"
#include "trainer/io/safetensors.h"

namespace neftune::io {
namespace {

using ::testing::HasSubstr;
using test::TempDir;

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
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors.tmp"));
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
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}})", 4)),
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

}  // namespace
}  // namespace neftune::io
