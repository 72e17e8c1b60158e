// Tokenizers against reference ids from python sentencepiece 0.1.97 (and llama2.c's encoder).
#include <gtest/gtest.h>

#include "tests/test_util.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::tok {
namespace {

TEST(TokenizerFixture, Llama2IdsMatchReferenceForEveryCase) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "llama2-tokenizer");
  const auto ref = test::read_json(dir + "/reference.json");
  const auto t = make_sentencepiece_tokenizer(dir + "/tokenizer.model");
  EXPECT_EQ(t->vocab_size(), ref["vocab_size"].get<int64_t>());
  EXPECT_EQ(t->bos_id(), ref["bos_id"].get<int32_t>());
  EXPECT_EQ(t->eos_id(), ref["eos_id"].get<int32_t>());
  ASSERT_GE(ref["cases"].size(), 20u);
  for (const auto& c : ref["cases"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(t->encode(text, true), c["ids_with_bos"].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(t->decode(c["ids_with_bos"].get<std::vector<int32_t>>()), c["decoded"].get<std::string>()) << text;
  }
}

TEST(TokenizerFixture, Stories260KIdsMatchReference) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "stories260K");
  const auto ref = test::read_json(dir + "/reference.json");
  const auto t = make_sentencepiece_tokenizer(dir + "/tokenizer.model");
  EXPECT_EQ(t->vocab_size(), 512);
  for (const auto& c : ref["tokenizer_checks"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(t->encode(text, true), c["ids_with_bos"].get<std::vector<int32_t>>()) << text;
  }
}

TEST(Tokenizer, ByteTokenizerRoundTripsAnyBytes) {
  ByteTokenizer t;
  const std::string text = "h\xc3\xa9llo\n\t\x01 \xf0\x9f\x98\x80";
  const auto ids = t.encode(text, true);
  ASSERT_EQ(ids.size(), text.size() + 1);
  EXPECT_EQ(ids[0], ByteTokenizer::kBos);
  EXPECT_EQ(t.decode(ids), text);
  EXPECT_EQ(t.vocab_size(), 259);
  EXPECT_NE(t.pad_id(), t.eos_id());
}

}  // namespace
}  // namespace neftune::tok
