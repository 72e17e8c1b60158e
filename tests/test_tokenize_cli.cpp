// `neftune tokenize` end to end: the {"ids": [...]} contract on directories that hold only tokenizer
// files, for tokenizer.json (Llama 3, Qwen3: reference ids from HF tokenizers' JS implementation) and
// tokenizer.model (Llama 2: reference ids from python sentencepiece), and its errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/test_util.h"

namespace neftune {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Ids = std::vector<int32_t>;

// The text as one shell word.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Ids tokenize_json(const std::string& dir, const std::string& text, bool special) {
  const auto r = test::run_command(test::neftune_bin() + " tokenize --model " + dir + (special ? " --special" : "") +
                                   " --json -- " + shell_quote(text) + " 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0) return {};
  return nlohmann::json::parse(r.output)["ids"].get<Ids>();
}

TEST(TokenizeCli, TokenizerJsonIdsMatchTheReference) {
  for (const char* name : {"llama3", "qwen3"}) {
    NEFTUNE_REQUIRE_FIXTURE(dir, std::string("modern/tokenizers/") + name);
    ASSERT_FALSE(fs::exists(dir + "/config.json"));  // tokenizer files only
    const auto ref = test::read_json(dir + "/reference.json");
    for (const int i : {3, 8}) {  // whitespace runs, emoji bytes
      const auto& c = ref["encode"][static_cast<size_t>(i)];
      EXPECT_EQ(tokenize_json(dir, c["text"], false), c["ids"].get<Ids>()) << name << " " << c["text"];
      EXPECT_EQ(tokenize_json(dir, c["text"], true), c["ids_special"].get<Ids>()) << name << " " << c["text"];
    }
    const auto& chat = ref["chat"][0];  // special tokens written in the text
    EXPECT_EQ(tokenize_json(dir, chat["text"], false), chat["ids"].get<Ids>()) << name;
  }
}

TEST(TokenizeCli, SentencepieceIdsMatchTheReference) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "llama2-tokenizer");
  const auto ref = test::read_json(dir + "/reference.json");
  for (const int i : {0, 5}) {
    const auto& c = ref["cases"][static_cast<size_t>(i)];
    const Ids with_bos = c["ids_with_bos"].get<Ids>();
    EXPECT_EQ(tokenize_json(dir, c["text"], true), with_bos) << c["text"];
    EXPECT_EQ(tokenize_json(dir, c["text"], false), Ids(with_bos.begin() + 1, with_bos.end())) << c["text"];
  }
}

TEST(TokenizeCli, WithoutJsonPrintsIdsAndPieces) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  const auto r = test::run_command(test::neftune_bin() + " tokenize --model " + dir + " 'Hello, world!' 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("hf tokenizer, vocab 128256: 4 tokens"));
  EXPECT_THAT(r.output, HasSubstr("9906\t\"Hello\""));
  EXPECT_THAT(r.output, HasSubstr("1917\t\"\xC4\xA0world\"\t\" world\""));  // the piece, then its text
}

TEST(TokenizeCli, BadInputIsOneClearErrorAndExitCode2) {
  test::TempDir d;
  fs::create_directories(d / "empty");
  auto r = test::run_command(test::neftune_bin() + " tokenize --model " + (d / "empty") + " --json hi 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("no tokenizer.model, tokenizer.json or neftune_tokenizer.json"));

  fs::create_directories(d / "wordpiece");
  test::write_file(
      d / "wordpiece/tokenizer.json",
      R"({"normalizer": null, "pre_tokenizer": {"type": "BertPreTokenizer"}, "model": {"type": "WordPiece", "vocab": {"a": 0}}})");
  r = test::run_command(test::neftune_bin() + " tokenize --model " + (d / "wordpiece") + " --json hi 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("tokenizer.json: pre_tokenizer: type 'BertPreTokenizer' is not supported"));
}

}  // namespace
}  // namespace neftune
