// `neftune tokenize` end to end: the {"ids": [...]} contract on directories that hold only tokenizer
// files, for tokenizer.json (Llama 3, Qwen3: reference ids from HF tokenizers' JS implementation) and
// tokenizer.model (Llama 2: reference ids from python sentencepiece), `--chat` (the fixtures' chat
// renderings and ids, with the loss mask), and its errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
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

// --chat: the fixture's chat cases written as conversation files. Reference: the text and ids HF renders
// and encodes; the labels are each assistant reply (read off the reference text, between the assistant
// header and the end-of-turn token) encoded alone, plus that end-of-turn token.
TEST(TokenizeCli, ChatPrintsTheTemplatesTextIdsAndLabelsMask) {
  test::TempDir d;
  for (const char* name : {"llama3", "qwen3"}) {
    NEFTUNE_REQUIRE_FIXTURE(dir, std::string("modern/tokenizers/") + name);
    const bool llama3 = std::string(name) == "llama3";
    const std::string header = llama3 ? "<|start_header_id|>assistant<|end_header_id|>\n\n" : "<|im_start|>assistant\n";
    const std::string eot = llama3 ? "<|eot_id|>" : "<|im_end|>";
    const auto ref = test::read_json(dir + "/reference.json");
    for (const int i : {2, 3}) {  // system + two exchanges; the same ending on a user turn + generation prompt
      const auto& chat = ref["chat"][static_cast<size_t>(i)];
      test::write_file(d / "conv.json", nlohmann::json{{"messages", chat["messages"]},
                                                       {"add_generation_prompt", chat["add_generation_prompt"]}}
                                            .dump());
      const auto r = test::run_command(test::neftune_bin() + " tokenize --model " + dir + " --chat " +
                                       (d / "conv.json") + " --json 2>/dev/null");
      ASSERT_EQ(r.exit_code, 0) << r.output;
      const auto out = nlohmann::json::parse(r.output);
      const std::string text = chat["text"];
      EXPECT_EQ(out["text"], text) << name << " " << i;
      const Ids ids = out["ids"].get<Ids>();
      EXPECT_EQ(ids, chat["ids"].get<Ids>()) << name << " " << i;
      const auto mask = out["labels_mask"].get<std::vector<int>>();
      ASSERT_EQ(mask.size(), ids.size());
      size_t want = 0;
      for (size_t at = text.find(header); at != std::string::npos; at = text.find(header, at + 1)) {
        const size_t end = text.find(eot, at + header.size());
        if (end == std::string::npos) break;
        want += tokenize_json(dir, text.substr(at + header.size(), end - at - header.size()), false).size() + 1;
      }
      EXPECT_EQ(static_cast<size_t>(std::count(mask.begin(), mask.end(), 1)), want) << name << " " << i;
      EXPECT_GT(want, 0u);
    }
  }
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

  r = test::run_command(test::neftune_bin() + " tokenize --model " + (d / "empty") + " --json 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("tokenize: give a TEXT to tokenize, or --chat FILE"));
}

TEST(TokenizeCli, ChatErrorsNameTheFileAndTheChoices) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  test::TempDir d;
  test::write_file(d / "bad.json",
                   R"({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]})");
  auto r =
      test::run_command(test::neftune_bin() + " tokenize --model " + dir + " --chat " + (d / "bad.json") + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bad.json: turn 2: field 'role' is not one of system, user, assistant"));
  test::write_file(d / "ok.json", R"({"messages": [{"role": "user", "content": "a"}]})");
  r = test::run_command(test::neftune_bin() + " tokenize --model " + dir + " --chat " + (d / "ok.json") +
                        " --template vicuna 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(
      r.output,
      HasSubstr("--template: 'vicuna' is not one of auto | llama3 | chatml | qwen3 | llama2 | mistral | alpaca"));
  // A named template overrides the directory's: ChatML's special tokens are not Llama 3's.
  r = test::run_command(test::neftune_bin() + " tokenize --model " + dir + " --chat " + (d / "ok.json") +
                        " --template chatml 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("the chatml chat template needs the special token <|im_start|>"));
  // A directory was "not valid JSON"; a FIFO blocked for good; tokenizer_config.json as the tokenizer
  // failed on a pre_tokenizer it does not have.
  r = test::run_command(test::neftune_bin() + " tokenize --model " + dir + " --chat " + d.path() + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr(d.path() + ": a directory, not a regular file: the conversation file"));
  ASSERT_EQ(mkfifo((d / "pipe.json").c_str(), 0600), 0);
  r = test::run_command("timeout -k 5 60 " + test::neftune_bin() + " tokenize --model " + dir + " --chat " +
                        (d / "pipe.json") + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("pipe.json: a FIFO (named pipe), not a regular file"));
  r = test::run_command(test::neftune_bin() + " tokenize --model " + dir + "/tokenizer_config.json --json hi 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("tokenizer_config.json: is the tokenizer_config.json beside a tokenizer, not the "
                                  "tokenizer: name tokenizer.json"));
}

}  // namespace
}  // namespace neftune
