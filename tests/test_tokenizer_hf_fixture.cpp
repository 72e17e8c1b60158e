// Llama 3 and Qwen3 tokenizer.json against reference ids from @huggingface/tokenizers (the JavaScript
// implementation of HF tokenizers; see ../shared/fixtures/modern/README.md): every `ids`, `ids_special`
// and `decoded` of reference.json's `encode` cases, and the ids of its rendered chat texts (special
// tokens written in the text). Exact equality: ids are integers.
#include <gtest/gtest.h>

#include <random>

#include "tests/test_util.h"
#include "trainer/tokenizer/tokenizer.h"
#include "trainer/tokenizer/utf8.h"

namespace neftune::tok {
namespace {

using Ids = std::vector<int32_t>;

struct Agreement {
  int ids = 0, ids_special = 0, decoded = 0, cases = 0, chat = 0, chats = 0;
};

Agreement compare_with_reference(const Tokenizer& t, const nlohmann::json& ref) {
  Agreement a;
  for (const auto& c : ref["encode"]) {
    const std::string text = c["text"].get<std::string>();
    const Ids ids = t.encode(text, false), ids_special = t.encode(text, true);
    const std::string decoded = t.decode(c["ids"].get<Ids>());
    EXPECT_EQ(ids, c["ids"].get<Ids>()) << text;
    EXPECT_EQ(ids_special, c["ids_special"].get<Ids>()) << text;
    EXPECT_EQ(decoded, c["decoded"].get<std::string>()) << text;
    a.ids += ids == c["ids"].get<Ids>();
    a.ids_special += ids_special == c["ids_special"].get<Ids>();
    a.decoded += decoded == c["decoded"].get<std::string>();
    ++a.cases;
  }
  for (const auto& c : ref["chat"]) {
    const Ids ids = t.encode(c["text"].get<std::string>(), false);
    EXPECT_EQ(ids, c["ids"].get<Ids>()) << c["text"].get<std::string>();
    a.chat += ids == c["ids"].get<Ids>();
    ++a.chats;
  }
  return a;
}

void report(const char* name, const Agreement& a) {
  const std::string line = std::string(name) + ": ids " + std::to_string(a.ids) + "/" + std::to_string(a.cases) +
                           ", ids_special " + std::to_string(a.ids_special) + "/" + std::to_string(a.cases) +
                           ", decoded " + std::to_string(a.decoded) + "/" + std::to_string(a.cases) + ", chat ids " +
                           std::to_string(a.chat) + "/" + std::to_string(a.chats);
  std::printf("[ agreement ] %s\n", line.c_str());
  ::testing::Test::RecordProperty(name, line);
}

TEST(HfTokenizerFixture, Llama3MatchesTheReferenceIds) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  const auto t = make_hf_tokenizer(dir + "/tokenizer.json");
  EXPECT_EQ(t->vocab_size(), 128256);
  EXPECT_EQ(t->bos_id(), 128000);                   // <|begin_of_text|>
  EXPECT_EQ(t->eos_id(), 128001);                   // <|end_of_text|>
  EXPECT_EQ(t->pad_id(), 128001);                   // none in the files: EOS
  EXPECT_EQ(t->stop_ids(), (Ids{128001, 128009}));  // and <|eot_id|>
  // ignore_merges: a pre-token that is itself in the vocabulary is that token. The reference texts do not
  // reach such a case (they give the same ids without ignore_merges); these pre-tokens do: their ids are
  // the vocabulary's, where the merges alone would make 51 5297 96303 and 124263 17406 17406 108601.
  EXPECT_EQ(t->encode("T\xC3\xBCrkiye", false), (Ids{112353}));
  EXPECT_EQ(t->encode(".:.:.:.:.:.:.:.:", false), (Ids{105356}));
  const Agreement a = compare_with_reference(*t, test::read_json(dir + "/reference.json"));
  report("llama3", a);
  EXPECT_GE(a.cases, 17);
  EXPECT_GE(a.chats, 6);
}

TEST(HfTokenizerFixture, Qwen3MatchesTheReferenceIds) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/qwen3");
  const auto t = make_hf_tokenizer(dir + "/tokenizer.json");
  EXPECT_EQ(t->vocab_size(), 151669);
  EXPECT_EQ(t->bos_id(), -1);      // Qwen has none
  EXPECT_EQ(t->eos_id(), 151645);  // <|im_end|> (tokenizer_config.json)
  EXPECT_EQ(t->pad_id(), 151643);  // <|endoftext|>
  EXPECT_EQ(t->stop_ids(), (Ids{151645, 151643}));
  const Agreement a = compare_with_reference(*t, test::read_json(dir + "/reference.json"));
  report("qwen3", a);
  EXPECT_GE(a.cases, 17);
  EXPECT_GE(a.chats, 6);
}

TEST(HfTokenizerFixture, Llama3DecodesWhatItEncodesForAnyText) {
  // Byte-level BPE without a normalizer loses nothing: decode(encode(s)) == s for all valid UTF-8 (that
  // spells no special token). Random strings from ASCII, controls, Latin, combining marks, CJK, kana,
  // emoji and the supplementary planes, seeded.
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  const auto t = make_hf_tokenizer(dir + "/tokenizer.json");
  const uint32_t ranges[][2] = {{0x20, 0x7E},     {0x09, 0x0D},     {0xA0, 0x24F},      {0x300, 0x36F},
                                {0x4E00, 0x4FFF}, {0x3040, 0x30FF}, {0x1F300, 0x1F64F}, {0x10000, 0x10FFFF}};
  std::mt19937 rng(7);
  for (int k = 0; k < 500; ++k) {
    std::string s;
    for (int i = static_cast<int>(rng() % 60); i > 0; --i) {
      const auto& r = ranges[rng() % 8];
      utf8::append(s, r[0] + rng() % (r[1] - r[0] + 1));
    }
    ASSERT_EQ(t->decode(t->encode(s, false)), s);
  }
}

TEST(HfTokenizerFixture, AutoPicksTokenizerJsonAndSaveRoundTrips) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  config::TokenizerConfig cfg;
  cfg.kind = config::TokenizerKind::auto_detect;
  const auto t = load_tokenizer(cfg, dir);
  ASSERT_EQ(t->kind(), "hf");
  test::TempDir out;
  t->save(out.path());
  const auto back = load_tokenizer_from_model_dir(out.path());
  const std::string text = "Give three tips for staying healthy.<|eot_id|>\n";
  EXPECT_EQ(back->encode(text, true), t->encode(text, true));
  EXPECT_EQ(test::read_file(out / "tokenizer_config.json"), test::read_file(dir + "/tokenizer_config.json"));
}

}  // namespace
}  // namespace neftune::tok
