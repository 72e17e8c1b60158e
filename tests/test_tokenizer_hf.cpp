// tokenizer.json (byte-level BPE) on small hand-made files whose ids follow from the merges by hand,
// the errors for what neftune does not implement, NFC against Python's unicodedata, and how
// tokenizer.kind auto picks a directory's tokenizer. The real Llama 3 / Qwen3 files are in
// test_tokenizer_hf_fixture.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "config/errors.h"
#include "tests/test_util.h"
#include "trainer/run/stop_signal.h"
#include "trainer/tokenizer/byte_level.h"
#include "trainer/tokenizer/tokenizer.h"
#include "trainer/tokenizer/unicode_nfc.h"
#include "trainer/tokenizer/utf8.h"

namespace neftune::tok {
namespace {

using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using Ids = std::vector<int32_t>;

// A GPT-2-style file: ids 0..255 are the bytes (id = byte value), then merges making "he" 256,
// "ll" 257, "hell" 258, "hello" 259, "Ġw" 260, "aa" 261; "lo" 262 is a token without a merge;
// added tokens <|endoftext|> 300 (special), <x> 301 (lstrip, rstrip, not special), <s> 302 (special).
json small_tokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level::encode(std::string(1, static_cast<char>(b)))] = b;
  const char* tokens[] = {"he", "ll", "hell", "hello", "\xC4\xA0w", "aa", "lo"};  // \xC4\xA0 = Ġ
  for (int i = 0; i < 7; ++i) vocab[tokens[i]] = 256 + i;
  auto added = [](int id, const char* content, bool special, bool strip) {
    return json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", strip},
                {"rstrip", strip}, {"normalized", false}, {"special", special}};
  };
  const json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens",
           {added(300, "<|endoftext|>", true, false), added(301, "<x>", false, true), added(302, "<s>", true, false)}},
          {"normalizer", nullptr},
          {"pre_tokenizer", byte_level},
          {"post_processor", byte_level},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "a a"}}}}};
}

// Writes `j` as <dir>/tokenizer.json (and `config` as tokenizer_config.json unless null) and loads it.
std::unique_ptr<Tokenizer> load(const test::TempDir& dir, const json& j, const json& config = nullptr) {
  test::write_file(dir / "tokenizer.json", j.dump());
  std::filesystem::remove(dir / "tokenizer_config.json");
  if (!config.is_null()) test::write_file(dir / "tokenizer_config.json", config.dump());
  return make_hf_tokenizer(dir / "tokenizer.json");
}

std::string load_error(const json& j) {
  test::TempDir dir;
  try {
    load(dir, j);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(HfTokenizer, ByteLevelAlphabetIsGpt2s) {
  // GPT-2's bytes_to_unicode: printable Latin-1 stands for itself, the 68 others are U+0100.. in order.
  const auto& map = byte_level::byte_to_char();
  EXPECT_EQ(map['A'], 'A');
  EXPECT_EQ(map[0xE9], 0xE9u);
  EXPECT_EQ(map[0x00], 0x100u);
  EXPECT_EQ(map['\n'], 0x10Au);  // Ċ
  EXPECT_EQ(map[' '], 0x120u);   // Ġ
  EXPECT_EQ(map[0x7F], 0x121u);
  EXPECT_EQ(map[0xAD], 0x143u);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(byte_level::decode(byte_level::encode(all)), all);
  EXPECT_FALSE(byte_level::decode("\xE2\x82\xAC").has_value());  // € is outside the alphabet
}

TEST(HfTokenizer, MergesApplyByRankLeftmostFirst) {
  test::TempDir dir;
  const auto t = load(dir, small_tokenizer());
  EXPECT_EQ(t->kind(), "hf");
  EXPECT_EQ(t->vocab_size(), 303);  // the largest id + 1
  EXPECT_EQ(t->encode("hello", false), (Ids{259}));
  // GPT-2's regex cuts "hello| world"; " world" = Ġ w o r l d, of which only "Ġ w" merges.
  EXPECT_EQ(t->encode("hello world", false), (Ids{259, 260, 'o', 'r', 'l', 'd'}));
  EXPECT_EQ(t->encode("aaa", false), (Ids{261, 'a'}));  // equal ranks: the leftmost pair first
  EXPECT_EQ(t->encode("aaaa", false), (Ids{261, 261}));
  EXPECT_EQ(t->encode("lo", false), (Ids{'l', 'o'}));  // "lo" is a token, but no merge makes it
  EXPECT_EQ(t->encode("", false), Ids{});
  EXPECT_EQ(t->decode(t->encode("hello world", false)), "hello world");
}

TEST(HfTokenizer, MergesAsPairsEqualMergesAsStrings) {
  json j = small_tokenizer();
  json pairs = json::array();
  for (const auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  j["model"]["merges"] = pairs;
  test::TempDir a, b;
  const auto strings = load(a, small_tokenizer()), arrays = load(b, j);
  for (const char* text : {"hello world", "aaaaa hell", "ll he", "xyz"})
    EXPECT_EQ(arrays->encode(text, false), strings->encode(text, false));
}

TEST(HfTokenizer, IgnoreMergesEmitsAVocabularyPieceWhole) {
  json j = small_tokenizer();
  j["model"]["ignore_merges"] = true;
  test::TempDir dir;
  const auto t = load(dir, j);
  EXPECT_EQ(t->encode("lo", false), (Ids{262}));
  EXPECT_EQ(t->encode("hello", false), (Ids{259}));
}

TEST(HfTokenizer, AddedTokensAreMatchedBeforeSplitting) {
  test::TempDir dir;
  const auto t = load(dir, small_tokenizer());
  EXPECT_EQ(t->encode("hi<|endoftext|>hi", false), (Ids{'h', 'i', 300, 'h', 'i'}));
  // <x> takes the whitespace on both sides (lstrip, rstrip).
  EXPECT_EQ(t->encode("a <x> b", false), (Ids{'a', 301, 'b'}));
  EXPECT_EQ(t->encode("<x><x>", false), (Ids{301, 301}));
  // decode leaves out special tokens, keeps the others as written.
  EXPECT_EQ(t->decode({259, 300, 301, 260}), "hello<x> w");
  json j = small_tokenizer();
  j["added_tokens"][1]["lstrip"] = j["added_tokens"][1]["rstrip"] = false;
  test::TempDir dir2;
  EXPECT_EQ(load(dir2, j)->encode("a <x> b", false), (Ids{'a', ' ', 301, ' ', 'b'}));
}

TEST(HfTokenizer, TemplateProcessingAddsItsTokensOnlyWithSpecialTokens) {
  json j = small_tokenizer();
  const json special = {{"<s>", {{"id", "<s>"}, {"ids", {302}}, {"tokens", {"<s>"}}}},
                        {"<|endoftext|>", {{"id", "<|endoftext|>"}, {"ids", {300}}, {"tokens", {"<|endoftext|>"}}}}};
  const json tmpl = {{"type", "TemplateProcessing"},
                     {"single",
                      {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                       {{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}}}},
                     {"pair", json::array()},
                     {"special_tokens", special}};
  j["post_processor"] = {{"type", "Sequence"}, {"processors", {j["post_processor"], tmpl}}};
  test::TempDir dir;
  const auto t = load(dir, j);
  EXPECT_EQ(t->encode("hello", true), (Ids{302, 259, 300}));
  EXPECT_EQ(t->encode("hello", false), (Ids{259}));
  EXPECT_EQ(t->bos_id(), 302);  // no tokenizer_config.json: the template's first token
  EXPECT_EQ(t->eos_id(), 300);  // ... and the first well-known end token
  EXPECT_EQ(t->pad_id(), 300);
  // The byte-level post-processor adds nothing.
  test::TempDir dir2;
  EXPECT_EQ(load(dir2, small_tokenizer())->encode("hello", true), (Ids{259}));
}

TEST(HfTokenizer, SpecialIdsComeFromTokenizerConfig) {
  test::TempDir dir;
  const auto t =
      load(dir, small_tokenizer(),
           {{"bos_token", {{"content", "<s>"}, {"lstrip", false}}}, {"eos_token", "<x>"}, {"pad_token", nullptr}});
  EXPECT_EQ(t->bos_id(), 302);
  EXPECT_EQ(t->eos_id(), 301);
  EXPECT_EQ(t->pad_id(), 301);                // no pad token: EOS
  EXPECT_EQ(t->stop_ids(), (Ids{301, 300}));  // EOS, then the end tokens the file has
  test::TempDir dir2;
  try {
    load(dir2, small_tokenizer(), {{"eos_token", "<nope>"}});
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("tokenizer_config.json: eos_token: '<nope>' is not a token")));
  }
  json j = small_tokenizer();
  j["added_tokens"].erase(0);  // no <|endoftext|>
  EXPECT_THAT(load_error(j), HasSubstr("no EOS token"));
}

TEST(HfTokenizer, DecodeWritesInvalidUtf8AsReplacementCharacters) {
  test::TempDir dir;
  const auto t = load(dir, small_tokenizer());
  EXPECT_EQ(t->decode({0xE2, 0x82}), "\xEF\xBF\xBD");  // a cut 3-byte sequence: one U+FFFD
  EXPECT_EQ(t->decode({0xE2, 0x82, 0xAC, 'a'}),
            "\xE2\x82\xAC"
            "a");  // whole again: €a
  // Python's bytes.decode("utf-8", "replace") on the same bytes (one U+FFFD per maximal invalid part).
  EXPECT_EQ(utf8::lossy("a\xFF"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8::lossy("\xE0\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::lossy("\xC3\xA9\xC3"), "\xC3\xA9\xEF\xBF\xBD");
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x98"), "\xEF\xBF\xBD");
  EXPECT_THROW(t->encode("a\xFF", false), UserError);
}

TEST(HfTokenizer, NfcMatchesPythonUnicodedata) {
  // Expected values: unicodedata.normalize("NFC", s) in Python 3.11 (Unicode 14.0).
  const std::pair<const char*, const char*> cases[] = {
      {"e\xCC\x81", "\xC3\xA9"},                                 // e + U+0301 -> é
      {"\xE2\x84\xAB", "\xC3\x85"},                              // U+212B ANGSTROM SIGN -> Å (singleton)
      {"a\xCC\xA3\xCC\x82", "\xE1\xBA\xAD"},                     // a + U+0323 + U+0302 -> U+1EAD
      {"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"},  // Hangul L V T -> U+AC01
      {"\xCD\x84", "\xCC\x88\xCC\x81"},                          // U+0344 -> U+0308 U+0301 (excluded)
      {"q\xCC\x87\xCC\xA3", "q\xCC\xA3\xCC\x87"},                // canonical reordering
      {"\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC"},              // U+0958 -> U+0915 U+093C (excluded)
      {"e\xCC\x81\xCC\x81", "\xC3\xA9\xCC\x81"},                 // the second accent is blocked
      {"\xCC\x81"
       "a",
       "\xCC\x81"
       "a"},  // a leading combining mark stays
  };
  for (const auto& [in, want] : cases) {
    EXPECT_EQ(nfc(in), want) << in;
    EXPECT_FALSE(nfc_quick_check(in)) << in;
  }
  EXPECT_TRUE(nfc_quick_check("plain ASCII, caf\xC3\xA9, \xE4\xBD\xA0\xE5\xA5\xBD"));
  json j = small_tokenizer();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
  test::TempDir dir;
  EXPECT_EQ(load(dir, j)->encode("e\xCC\x81", false), (Ids{0xC3, 0xA9}));
}

TEST(HfTokenizer, UnsupportedComponentsAreErrorsNamingFilePathAndType) {
  struct Case {
    std::string what;
    std::function<void(json&)> edit;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"normalizer",
       [](json& j) {
         j["normalizer"] = {{"type", "Lowercase"}};
       },
       "tokenizer.json: normalizer: type 'Lowercase' is not supported"},
      {"nested normalizer",
       [](json& j) {
         j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "NFKC"}}}}};
       },
       "normalizer.normalizers[1]: type 'NFKC' is not supported"},
      {"pre-tokenizer",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Whitespace"}}, j["pre_tokenizer"]}}};
       },
       "pre_tokenizer.pretokenizers[0]: type 'Whitespace' is not supported"},
      {"no ByteLevel",
       [](json& j) {
         j["pre_tokenizer"] = {
             {"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Isolated"}, {"invert", false}};
       },
       "pre_tokenizer: only byte-level BPE is supported"},
      {"split behavior",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Sequence"},
                               {"pretokenizers",
                                {{{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "MergedWithNext"}},
                                 j["pre_tokenizer"]}}};
       },
       "pre_tokenizer.pretokenizers[0].behavior: 'MergedWithNext' is not supported"},
      {"bad regex",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Sequence"},
                               {"pretokenizers",
                                {{{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}},
                                 j["pre_tokenizer"]}}};
       },
       "pre_tokenizer.pretokenizers[0].pattern: invalid regex at offset"},
      {"model", [](json& j) { j["model"]["type"] = "WordPiece"; }, "model: type 'WordPiece' is not supported"},
      {"dropout", [](json& j) { j["model"]["dropout"] = 0.1; }, "model.dropout: BPE dropout is not supported"},
      {"post-processor",
       [](json& j) {
         j["post_processor"] = {{"type", "RobertaProcessing"}};
       },
       "post_processor: type 'RobertaProcessing' is not supported"},
      {"decoder",
       [](json& j) {
         j["decoder"] = {{"type", "Metaspace"}};
       },
       "decoder: type 'Metaspace' is not supported"},
      {"single_word", [](json& j) { j["added_tokens"][1]["single_word"] = true; },
       "added_tokens[1].single_word: true is not supported ('<x>')"},
      {"merge of unknown token", [](json& j) { j["model"]["merges"].push_back("q z"); },
       "model.merges[6]: token 'qz' is not in the vocabulary"},
      {"vocab id", [](json& j) { j["model"]["vocab"]["he"] = "x"; }, "model.vocab: token 'he' has no valid id"},
      // Ids size the embedding table: one id of a billion asked for 35 GB, one of two million trained a
      // model of mostly unreachable rows.
      {"vocab id past the limit", [](json& j) { j["model"]["vocab"]["he"] = 1 << 30; },
       "model.vocab: token 'he' has no valid id (0 to 4194303)"},
      {"added id past the limit", [](json& j) { j["added_tokens"][0]["id"] = 1073741823; },
       "added_tokens[0].id: out of range (0 to 4194303)"},
      {"a gap of unused ids", [](json& j) { j["added_tokens"][2]["id"] = 2000000; },
       "tokenizer.json: ids run to 2000000 (added token '<s>') but only 266 are used: 1999735 ids without a token"},
      {"empty split string",
       [](json& j) {
         j["pre_tokenizer"] = {
             {"type", "Sequence"},
             {"pretokenizers",
              {{{"type", "Split"}, {"pattern", {{"String", ""}}}, {"behavior", "Isolated"}}, j["pre_tokenizer"]}}};
       },
       "pre_tokenizer.pretokenizers[0].pattern.String: an empty pattern matches nothing to split on"},
  };
  for (const auto& c : cases) {
    json j = small_tokenizer();
    c.edit(j);
    EXPECT_THAT(load_error(j), HasSubstr(c.expect)) << c.what;
  }
  EXPECT_THAT(load_error(json::array()), HasSubstr("tokenizer.json: expected a JSON object"));
  test::TempDir dir;
  test::write_file(dir / "tokenizer.json", "{\"model\": ");
  EXPECT_THROW(make_hf_tokenizer(dir / "tokenizer.json"), UserError);
}

// A pattern that backtracks without end ended in "match limit exceeded" naming nothing; now the error
// names the pattern. A stop request ends a long text's splitting (it was checked only between records).
TEST(HfTokenizer, ACatastrophicPatternIsNamedAndAStopEndsSplitting) {
  test::TempDir dir;
  json j = small_tokenizer();
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", "(a+)+$"}}}, {"behavior", "Isolated"}}, j["pre_tokenizer"]}}};
  const auto tok = load(dir, j);
  EXPECT_THAT(test::error_of([&] { tok->encode(std::string(40, 'a') + "b", false); }),
              HasSubstr("pre-tokenizer pattern '(a+)+$' hit PCRE2's backtracking limit on a text of 41 bytes"));
  const auto plain = load(dir, small_tokenizer());
  std::string words;
  for (int i = 0; i < 1000; ++i) words += "hello ";
  const Ids expected = plain->encode(words, false);
  run::request_stop();
  EXPECT_THROW(plain->encode(words, false), StopRequested);
  run::clear_stop_request();
  EXPECT_EQ(plain->encode(words, false), expected);
}

TEST(HfTokenizer, SaveWritesFilesThatLoadToTheSameTokenizer) {
  test::TempDir src, dst;
  const auto t = load(src, small_tokenizer());
  t->save(dst.path());
  const auto back = make_hf_tokenizer(dst / "tokenizer.json");
  EXPECT_EQ(back->encode("hello <x> world", false), t->encode("hello <x> world", false));
  EXPECT_EQ(back->eos_id(), t->eos_id());
  EXPECT_EQ(test::read_json(dst / "tokenizer_config.json")["eos_token"], "<|endoftext|>");
  t->save(src.path());  // onto its own files: nothing lost
  EXPECT_EQ(make_hf_tokenizer(src / "tokenizer.json")->encode("hello", false), (Ids{259}));
}

TEST(TokenizerKind, AutoPicksTheDirectorysTokenizer) {
  test::TempDir dir;
  test::write_file(dir / "tokenizer.json", small_tokenizer().dump());
  config::TokenizerConfig cfg;
  cfg.kind = config::TokenizerKind::auto_detect;
  EXPECT_EQ(load_tokenizer(cfg, dir.path())->kind(), "hf");
  EXPECT_EQ(load_tokenizer(cfg, std::nullopt)->kind(), "byte");  // no model.path: a new model's byte tokenizer
  cfg.path = dir / "tokenizer.json";
  EXPECT_EQ(load_tokenizer(cfg, std::nullopt)->kind(), "hf");
  EXPECT_EQ(load_tokenizer_from_model_dir(dir.path())->kind(), "hf");
  EXPECT_EQ(load_tokenizer_from_model_dir(dir / "tokenizer.json")->kind(), "hf");
  // A LLaMA-2 directory holds its tokenizer.model and a tokenizer.json converted from it: the former.
  test::write_file(dir / "tokenizer.model", "not read here");
  EXPECT_EQ(find_tokenizer_file(dir.path())->kind, config::TokenizerKind::sentencepiece);

  test::TempDir empty;
  cfg.path.reset();
  try {
    load_tokenizer(cfg, empty.path());
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no tokenizer.model, tokenizer.json or neftune_tokenizer.json"));
  }
  cfg.kind = config::TokenizerKind::hf;
  try {
    load_tokenizer(cfg, std::nullopt);
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_THAT(e.what(), HasSubstr("tokenizer.kind hf: set tokenizer.path or model.path"));
  }
  cfg.path = dir.path();  // a directory: its tokenizer.json
  EXPECT_EQ(load_tokenizer(cfg, std::nullopt)->kind(), "hf");
}

}  // namespace
}  // namespace neftune::tok
