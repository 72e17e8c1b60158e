// Conversation data end to end: segments -> ids + loss mask against the Llama 3 and Qwen3 fixtures' ids
// (HF's rendering and tokenizer) and against token offsets computed from the vocabulary pieces; ShareGPT
// and messages records and their errors; Alpaca records under a chat template; truncation by dropping
// early exchanges; NEFTune's per-sample length; a few training steps; `generate --chat` stopping at the
// end-of-turn token.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>

#include "config/config.h"
#include "tests/test_util.h"
#include "trainer/data/batch.h"
#include "trainer/data/chat_encode.h"
#include "trainer/data/chat_examples.h"
#include "trainer/data/chat_template_load.h"
#include "trainer/data/conversations.h"
#include "trainer/data/examples.h"
#include "trainer/data/records.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/neftune.h"
#include "trainer/run/datasets.h"
#include "trainer/run/trainer.h"

namespace neftune::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using json = nlohmann::json;
using test::error_of;
using test::TempDir;
using test::write_file;

// Loading a 128k-entry tokenizer.json takes a while: once per fixture.
const tok::Tokenizer& fixture_tokenizer(const std::string& dir) {
  static std::map<std::string, std::unique_ptr<tok::Tokenizer>> cache;
  auto& t = cache[dir];
  if (!t) t = tok::load_tokenizer_from_model_dir(dir);
  return *t;
}

Conversation from_json(const json& j) {
  Conversation c;
  for (const auto& m : j.at("messages")) c.messages.push_back({m.at("role"), m.at("content")});
  c.add_generation_prompt = j.value("add_generation_prompt", false);
  return c;
}

// The assistant replies of a rendered text: what lies between each assistant header and the end-of-turn
// token after it (a trailing generation header has none).
std::vector<std::string> replies_in(const std::string& text, const std::string& header, const std::string& eot) {
  std::vector<std::string> out;
  for (size_t at = text.find(header); at != std::string::npos; at = text.find(header, at + 1)) {
    const size_t begin = at + header.size(), end = text.find(eot, begin);
    if (end == std::string::npos) break;
    out.push_back(text.substr(begin, end - begin));
  }
  return out;
}

// The maximal runs of ids with a loss.
std::vector<std::vector<int32_t>> masked_runs(const std::vector<int32_t>& ids, const std::vector<uint8_t>& train) {
  std::vector<std::vector<int32_t>> out;
  for (size_t k = 0; k < ids.size(); ++k) {
    if (!train[k]) continue;
    if (k == 0 || !train[k - 1]) out.emplace_back();
    out.back().push_back(ids[k]);
  }
  return out;
}

int32_t single_id(const tok::Tokenizer& tok, const std::string& special) {
  const auto ids = tok.encode(special, false);
  EXPECT_EQ(ids.size(), 1u) << special;
  return ids.empty() ? -1 : ids[0];
}

class ChatEncodeFixture : public ::testing::TestWithParam<std::string> {};

// Reference: the fixture's `ids` are HF tokenizers' encoding of the text HF's Jinja renders; the trained
// text is read off that reference text (between each assistant header and its end-of-turn token).
TEST_P(ChatEncodeFixture, IdsEqualTheReferenceAndTheMaskIsEachReplyAndItsEndOfTurn) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/" + GetParam());
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  const ChatTemplate t = load_chat_template(dir, "test");
  const bool llama3 = GetParam() == "llama3";
  const std::string header = llama3 ? "<|start_header_id|>assistant<|end_header_id|>\n\n" : "<|im_start|>assistant\n";
  const std::string eot = llama3 ? "<|eot_id|>" : "<|im_end|>";
  const int32_t eot_id = single_id(tok, eot);
  int equal = 0, cases = 0;
  const json reference = test::read_json(dir + "/reference.json");
  for (const auto& chat : reference.at("chat")) {
    ++cases;
    const EncodedChat e = encode_chat(tok, t, render_chat(t, from_json(chat), "chat"));
    const auto ref = chat.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(e.ids, ref) << chat.dump();
    equal += e.ids == ref;
    ASSERT_EQ(e.train.size(), e.ids.size());
    const auto replies = replies_in(chat.at("text").get<std::string>(), header, eot);
    const auto runs = masked_runs(e.ids, e.train);
    ASSERT_EQ(runs.size(), replies.size()) << chat.dump();
    for (size_t k = 0; k < runs.size(); ++k) {
      EXPECT_EQ(runs[k].back(), eot_id) << chat.dump();
      EXPECT_EQ(tok.decode({runs[k].begin(), runs[k].end() - 1}), replies[k]) << chat.dump();
    }
  }
  EXPECT_EQ(cases, 6);
  EXPECT_EQ(equal, cases);  // 6 of 6 per tokenizer
}

INSTANTIATE_TEST_SUITE_P(Modern, ChatEncodeFixture, ::testing::Values("llama3", "qwen3"));

Conversation two_exchanges() {
  Conversation c;
  c.messages = {{"system", "Be brief."},
                {"user", "Name a color."},
                {"assistant", "Blue."},
                {"user", "Another?"},
                {"assistant", "Green."}};
  return c;
}

TEST(ChatEncode, TrainOnLastAssistantAndAll) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  const ChatTemplate t = load_chat_template(dir, "test");
  const auto segs = render_chat(t, two_exchanges(), "t");
  const EncodedChat every = encode_chat(tok, t, select_targets(segs, config::TrainOn::assistant));
  const EncodedChat last = encode_chat(tok, t, select_targets(segs, config::TrainOn::last_assistant));
  const EncodedChat all = encode_chat(tok, t, select_targets(segs, config::TrainOn::all));
  EXPECT_EQ(last.ids, every.ids);
  EXPECT_EQ(all.ids, every.ids);
  const auto runs = masked_runs(last.ids, last.train);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(tok.decode({runs[0].begin(), runs[0].end() - 1}), "Green.");
  EXPECT_EQ(runs[0].back(), single_id(tok, "<|eot_id|>"));
  // all: every token but the first, which nothing predicts.
  EXPECT_EQ(all.train[0], 0);
  EXPECT_EQ(std::count(all.train.begin(), all.train.end(), 1), static_cast<long>(all.ids.size()) - 1);
}

// HF's rule for a {% generation %} span: the tokens from the one holding its first byte to the one holding
// its last. Reference offsets come from the vocabulary pieces (byte-level: one character per byte;
// sentencepiece: "▁" is a space, and the first piece's "▁" is the added dummy prefix).
std::vector<uint8_t> hf_rule_mask(const std::vector<std::string>& token_texts, size_t begin, size_t end) {
  std::vector<uint8_t> mask;
  size_t at = 0;
  for (const std::string& s : token_texts) {
    mask.push_back(at < end && at + s.size() > begin ? 1 : 0);
    at += s.size();
  }
  return mask;
}

TEST(ChatEncode, ATokenStraddlingTheReplysStartIsTrainedAsHfMarksIt) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/qwen3");
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  // ChatML does not strip content: "assistant\n" + "\n\nHello" pre-tokenizes as "assistant", "\n\n\n",
  // "Hello", so one token holds the header's newline and the reply's two.
  const ChatTemplate t = builtin_chat_template(ChatFamily::chatml);
  Conversation c;
  c.messages = {{"user", "Hi"}, {"assistant", "\n\nHello"}};
  const EncodedChat e = encode_chat(tok, t, render_chat(t, c, "t"));
  const std::string run = "assistant\n\n\nHello";
  const std::vector<int32_t> run_ids = tok.encode(run, false);
  ASSERT_EQ(run_ids.size(), 3u);  // the straddling token exists
  std::vector<std::string> texts;
  texts.reserve(run_ids.size());
  for (const int32_t id : run_ids) texts.push_back(tok.decode({id}));  // ASCII: each token's exact bytes
  const std::vector<uint8_t> ref = hf_rule_mask(texts, 10, run.size());
  EXPECT_EQ(ref, (std::vector<uint8_t>{0, 1, 1}));
  // The run sits after "<|im_start|>user\nHi<|im_end|>\n<|im_start|>" and before <|im_end|> (trained).
  const auto it = std::search(e.ids.begin(), e.ids.end(), run_ids.begin(), run_ids.end());
  ASSERT_NE(it, e.ids.end());
  const size_t at = static_cast<size_t>(it - e.ids.begin());
  EXPECT_EQ(std::vector<uint8_t>(e.train.begin() + at, e.train.begin() + at + 3), ref);
  EXPECT_EQ(e.train[at + 3], 1);  // <|im_end|>
  EXPECT_EQ(std::count(e.train.begin(), e.train.end(), 1), 3);
}

TEST(ChatEncode, SentencepieceReplyTokensIncludeTheirLeadingSpace) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "llama2-tokenizer");
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  const ChatTemplate t = builtin_chat_template(ChatFamily::llama2);
  Conversation c;
  c.messages = {{"user", "Hi"}, {"assistant", "Hello there"}};
  const EncodedChat e = encode_chat(tok, t, render_chat(t, c, "t"));
  // <s> "[INST] Hi [/INST]" " " "Hello there " </s>: one text run between BOS and EOS.
  const std::string run = "[INST] Hi [/INST] Hello there ";
  const std::vector<int32_t> run_ids = tok.encode(run, false);
  ASSERT_EQ(e.ids.size(), run_ids.size() + 2);
  EXPECT_EQ(e.ids.front(), tok.bos_id());
  EXPECT_EQ(e.ids.back(), tok.eos_id());
  std::vector<std::string> texts;
  std::string joined;
  for (const int32_t id : run_ids) {
    std::string p = tok.piece(id);
    for (size_t k; (k = p.find("\xE2\x96\x81")) != std::string::npos;) p.replace(k, 3, " ");
    texts.push_back(p);
    joined += p;
  }
  ASSERT_EQ(joined, " " + run);  // the dummy prefix, then the run
  const std::vector<uint8_t> ref = hf_rule_mask(texts, 1 + 18, 1 + run.size());
  EXPECT_EQ(std::vector<uint8_t>(e.train.begin() + 1, e.train.end() - 1), ref);
  EXPECT_EQ(e.train.back(), 1);  // </s>
  EXPECT_EQ(std::count(ref.begin(), ref.end(), 1) + 1, std::count(e.train.begin(), e.train.end(), 1));
}

TEST(ChatEncode, ATemplateWhoseSpecialTokensTheTokenizerLacksIsAnError) {
  tok::ByteTokenizer byte;
  const ChatTemplate t = builtin_chat_template(ChatFamily::llama3);
  Conversation c;
  c.messages = {{"user", "a"}, {"assistant", "b"}};
  EXPECT_THAT(error_of([&] { encode_chat(byte, t, render_chat(t, c, "t")); }),
              HasSubstr("the llama3 chat template needs the special token <|start_header_id|>, which the byte "
                        "tokenizer does not have"));
  // In a dataset it is one error up front, not a fault of every record (nor skipped as one).
  TokenizeOptions o;
  o.chat_template = t;
  o.on_malformed = config::OnMalformed::skip;
  EXPECT_THAT(error_of([&] {
                make_examples({{"Say hi.", "", "hi"}}, byte, o, "f.json");
              }),
              ::testing::AllOf(HasSubstr("needs the special token"), ::testing::Not(HasSubstr("record"))));
}

// The alpaca template on a one-turn conversation makes exactly the Alpaca path's example: <s> and </s>
// become the byte tokenizer's BOS and EOS.
TEST(ChatEncode, AlpacaTemplateEqualsTheAlpacaPath) {
  tok::ByteTokenizer byte;
  const ChatTemplate t = builtin_chat_template(ChatFamily::alpaca);
  Conversation c;
  c.messages = {{"user", "Say hi."}, {"assistant", "hi"}};
  const EncodedChat e = encode_chat(byte, t, render_chat(t, c, "t"));
  const auto ex = make_examples({{"Say hi.", "", "hi"}}, byte, 512, config::TooLong::error, "t");
  EXPECT_EQ(e.ids, ex[0].ids);
  EXPECT_EQ(e.train, ex[0].train);
}

// ---- records ----

TEST(Conversations, ReadsShareGptAndMessagesAsArrayAndJsonl) {
  TempDir d;
  write_file(
      d / "m.jsonl",
      R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}]})"
      "\n"
      R"({"messages": [{"role": "user", "content": "u2"}, {"role": "assistant", "content": "a2"}, {"role": "user", "content": "u3"}, {"role": "assistant", "content": "a3"}]})"
      "\n");
  write_file(
      d / "s.json",
      R"([{"conversations": [{"from": "system", "value": ""}, {"from": "human", "value": "u1"}, {"from": "gpt", "value": "a1"}]},
                 {"conversations": [{"from": "user", "value": "u2"}, {"from": "assistant", "value": "a2"}]}])");
  const auto m = read_records(d / "m.jsonl", config::DataFormat::messages, config::OnMalformed::error);
  ASSERT_EQ(m.size(), 2u);
  ASSERT_EQ(m[0].messages.size(), 3u);
  EXPECT_EQ(m[0].messages[0].role, "system");
  EXPECT_EQ(m[1].messages[3].content, "a3");
  EXPECT_EQ(record_location(m[1], 7), "record 1 (line 2)");
  const auto s = read_records(d / "s.json", config::DataFormat::sharegpt, config::OnMalformed::error);
  ASSERT_EQ(s.size(), 2u);
  // An empty system prompt is no system turn.
  ASSERT_EQ(s[0].messages.size(), 2u);
  EXPECT_EQ(s[0].messages[0].role, "user");
  EXPECT_EQ(s[0].messages[1].role, "assistant");
  EXPECT_EQ(s[1].messages[1].content, "a2");
  EXPECT_EQ(record_location(s[1], 7), "record 1");
}

TEST(Conversations, AutoDecidesPerRecord) {
  TempDir d;
  write_file(d / "mixed.jsonl",
             R"({"instruction": "i", "input": "x", "output": "o"})"
             "\n"
             R"({"instruction": "q", "context": "c", "response": "r"})"
             "\n"
             R"({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]})"
             "\n"
             R"({"conversations": [{"from": "human", "value": "h"}, {"from": "gpt", "value": "g"}]})"
             "\n");
  const auto r = read_records(d / "mixed.jsonl", config::DataFormat::auto_detect, config::OnMalformed::error);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_FALSE(r[0].is_conversation());
  EXPECT_EQ(r[0].input, "x");
  EXPECT_EQ(r[1].output, "r");  // Dolly
  EXPECT_EQ(r[2].messages[1].content, "a");
  EXPECT_EQ(r[3].messages[0].role, "user");
  EXPECT_EQ(r[3].messages[1].content, "g");
  // An explicit instruction format does not read conversations.
  write_file(d / "two.jsonl",
             R"({"instruction": "i", "output": "o"})"
             "\n"
             R"({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]})");
  EXPECT_THAT(error_of([&] { read_records(d / "two.jsonl", config::DataFormat::alpaca, config::OnMalformed::error); }),
              HasSubstr("two.jsonl: record 1 (line 2): is a conversation, not an Alpaca record: set data.format to "
                        "messages or auto"));
}

TEST(Conversations, MalformedOnesNameFileRecordAndTurn) {
  TempDir d;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"([{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}])",
       "turn 2: field 'role' is not one of system, user, assistant (tool turns are not supported)"},
      {R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])", "turn 2: expected an assistant turn"},
      {R"([{"role": "assistant", "content": "a"}])", "turn 1: expected a user turn"},
      {R"([{"role": "user", "content": "a"}, {"role": "assistant", "content": "  \n"}])",
       "turn 2: the content is empty"},
      {R"([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}])",
       "turn 3: the conversation ends on a user turn"},
      {R"([{"role": "system", "content": "s"}])", "the conversation has no assistant turn"},
      {R"([{"role": "user", "content": "a"}, {"role": "system", "content": "s"}])",
       "turn 2: a system turn must come first"},
      {R"([{"role": "user", "content": "a"}, {"role": "assistant", "content": null, "tool_calls": [{}]}])",
       "turn 2: tool calls are not supported"},
      // HF's qwen3 template renders it, the others drop it: refused rather than trained as an empty <think>.
      {R"([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "reasoning_content": "r"}])",
       "turn 2: field 'reasoning_content' is not supported: put the reasoning into the content as <think>"},
      {R"([{"role": "user", "content": [{"type": "text", "text": "a"}]}])", "turn 1: field 'content' is not a string"},
      {R"([])", "field 'messages' has no turns"},
  };
  std::string file;
  for (const auto& [turns, _] : cases) file += R"({"messages": )" + turns + "}\n";
  write_file(d / "x.jsonl", file);
  for (size_t i = 0; i < cases.size(); ++i) {
    // One file per case (an error stops at the first bad record), the record on line 2.
    write_file(d / "one.jsonl", "\n" + std::string(R"({"messages": )") + cases[i].first + "}\n");
    EXPECT_THAT(
        error_of([&] { read_records(d / "one.jsonl", config::DataFormat::auto_detect, config::OnMalformed::error); }),
        HasSubstr(d / "one.jsonl" + ": record 0 (line 2): " + cases[i].second))
        << i;
  }
  write_file(d / "sharegpt.json",
             R"([{"conversations": [{"from": "human", "value": "a"}, {"from": "bard", "value": "b"}]}])");
  EXPECT_THAT(
      error_of([&] { read_records(d / "sharegpt.json", config::DataFormat::sharegpt, config::OnMalformed::error); }),
      HasSubstr("sharegpt.json: record 0: turn 2: field 'from' is not one of system, human, gpt (or user, assistant)"));
  ReadStats st;
  write_file(d / "x.jsonl",
             file + R"({"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "ok"}]})"
                    "\n");
  const auto kept = read_records(d / "x.jsonl", config::DataFormat::messages, config::OnMalformed::skip, &st);
  EXPECT_EQ(kept.size(), 1u);
  EXPECT_EQ(st.skipped_malformed, static_cast<int64_t>(cases.size()));
}

// The example files shipped in config/examples/data read as conversations, under every rule.
TEST(Conversations, TheShippedSamplesAreWellFormed) {
  const std::string dir = std::string(NEFTUNE_SOURCE_DIR) + "/config/examples/data/";
  const auto chat = read_records(dir + "chat_sample.jsonl", config::DataFormat::messages, config::OnMalformed::error);
  const auto sharegpt =
      read_records(dir + "sharegpt_sample.json", config::DataFormat::sharegpt, config::OnMalformed::error);
  EXPECT_EQ(chat.size(), 30u);
  EXPECT_EQ(sharegpt.size(), 10u);
  for (const auto& r : chat) EXPECT_TRUE(r.is_conversation());
}

// ---- examples ----

TEST(ChatExamples, AlpacaRecordsBecomeOneTurnConversationsUnderAChatTemplate) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  TokenizeOptions o;
  o.chat_template = load_chat_template(dir, "test");
  const std::vector<Record> rs = {{"Add 2 and 3.", "Show the sum.", "5"}, {"Say hi.", "", "hi"}};
  const auto ex = make_examples(rs, tok, o, "t");
  ASSERT_EQ(ex.size(), 2u);
  // What TRL renders for [user: instruction + "\n\n" + input, assistant: output] with this template.
  const std::string text =
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nAdd 2 and 3.\n\nShow the sum.<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n5<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(ex[0].ids, tok.encode(text, false));
  const auto runs = masked_runs(ex[0].ids, ex[0].train);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0], (std::vector<int32_t>{tok.encode("5", false)[0], single_id(tok, "<|eot_id|>")}));
  // No template, or the alpaca one: the Alpaca prompt, bit for bit.
  const auto plain = make_examples(rs, tok, 512, config::TooLong::error, "t");
  o.chat_template = builtin_chat_template(ChatFamily::alpaca);
  const auto alpaca = make_examples(rs, tok, o, "t");
  for (size_t i = 0; i < rs.size(); ++i) {
    EXPECT_EQ(alpaca[i].ids, plain[i].ids);
    EXPECT_EQ(alpaca[i].train, plain[i].train);
    EXPECT_EQ(tok.decode(plain[i].ids).rfind("Below is an instruction", 0), 0u);
  }
  // A conversation without a template is an error naming the record.
  Record conv;
  conv.messages = {{"user", "a"}, {"assistant", "b"}};
  EXPECT_THAT(error_of([&] {
                make_examples({rs[0], conv}, tok, 512, config::TooLong::error, "f.json");
              }),
              HasSubstr("f.json: record 1: a conversation needs a chat template: set data.chat_template"));
}

Conversation long_chat() {
  Conversation c;
  c.messages.push_back({"system", "Be brief."});
  for (int k = 1; k <= 4; ++k) {
    c.messages.push_back({"user", "Question " + std::to_string(k) + ": tell me about the number " + std::to_string(k) +
                                      " and why it matters so much to so many people."});
    c.messages.push_back({"assistant", "Answer " + std::to_string(k) + "."});
  }
  return c;
}

TEST(ChatExamples, TooLongConversationsDropEarlyExchangesAndKeepTheSystemTurn) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  const ChatTemplate t = load_chat_template(dir, "test");
  const Conversation c = long_chat();
  // Reference: the conversation written out without its first two exchanges.
  Conversation last_two;
  last_two.messages = {c.messages[0], c.messages[5], c.messages[6], c.messages[7], c.messages[8]};
  const EncodedChat want = encode_chat(tok, t, render_chat(t, last_two, "t"));
  const EncodedChat full = encode_chat(tok, t, render_chat(t, c, "t"));
  ASSERT_GT(full.ids.size(), want.ids.size());
  TokenizeStats st;
  const auto ex = conversation_example(tok, t, config::TrainOn::assistant, c, static_cast<int64_t>(want.ids.size()),
                                       config::TooLong::truncate, "t", st);
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->ids, want.ids);
  EXPECT_EQ(ex->train, want.train);
  EXPECT_THAT(tok.decode(ex->ids), HasSubstr("Be brief."));
  EXPECT_EQ(st.dropped_turns, 1);
  EXPECT_EQ(st.cut_last_turn, 0);
  // One token less: only the last exchange is kept, and it fits.
  const auto ex3 = conversation_example(tok, t, config::TrainOn::assistant, c,
                                        static_cast<int64_t>(want.ids.size()) - 1, config::TooLong::truncate, "t", st);
  ASSERT_TRUE(ex3);
  EXPECT_LT(ex3->ids.size(), want.ids.size());
  EXPECT_EQ(masked_runs(ex3->ids, ex3->train).size(), 1u);
  EXPECT_EQ(st.dropped_turns, 2);
}

TEST(ChatExamples, TheLastExchangeAloneTooLongIsCutAtItsEnd) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  const ChatTemplate t = load_chat_template(dir, "test");
  Conversation c;
  c.messages = {{"user", "Count to ten."}, {"assistant", "One two three four five six seven eight nine ten."}};
  const EncodedChat full = encode_chat(tok, t, render_chat(t, c, "t"));
  const int64_t n = static_cast<int64_t>(full.ids.size());
  TokenizeStats st;
  const auto ex =
      conversation_example(tok, t, config::TrainOn::assistant, c, n - 8, config::TooLong::truncate, "t", st);
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->ids, std::vector<int32_t>(full.ids.begin(), full.ids.begin() + (n - 8)));
  EXPECT_EQ(ex->train, std::vector<uint8_t>(full.train.begin(), full.train.begin() + (n - 8)));
  EXPECT_EQ(st.cut_last_turn, 1);
  // A cut before the reply leaves nothing to learn: skipped and counted.
  EXPECT_FALSE(conversation_example(tok, t, config::TrainOn::assistant, c, 6, config::TooLong::truncate, "t", st));
  EXPECT_EQ(st.skipped_too_long, 1);
  EXPECT_FALSE(conversation_example(tok, t, config::TrainOn::assistant, c, n - 1, config::TooLong::skip, "t", st));
  EXPECT_EQ(st.skipped_too_long, 2);
  EXPECT_THAT(error_of([&] {
                conversation_example(tok, t, config::TrainOn::assistant, c, n - 1, config::TooLong::error,
                                     "c.jsonl: record 3 (line 4)", st);
              }),
              HasSubstr("c.jsonl: record 3 (line 4): " + std::to_string(n) + " tokens exceed data.max_seq_len"));
}

// NEFTune scales each sample by its own length L_i: the sequence's real tokens, whatever the loss mask.
// Closed form: |delta| <= alpha / sqrt(L_i d), and the largest of L_i * d uniform draws comes close to it.
TEST(ChatExamples, NeftuneLengthIsTheSequenceLengthNotTheTargets) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  const ChatTemplate t = load_chat_template(dir, "test");
  TokenizeStats st;
  const auto ex =
      conversation_example(tok, t, config::TrainOn::last_assistant, long_chat(), 4096, config::TooLong::error, "t", st);
  ASSERT_TRUE(ex);
  const int64_t len = static_cast<int64_t>(ex->ids.size());
  ASSERT_GT(len, 8 * ex->n_targets());  // a mask-based length would be 8x smaller: the bound 2.8x larger
  const Batch b = collate({*ex}, {{0, 0}}, tok.pad_id());
  EXPECT_EQ(b.lengths, std::vector<int64_t>{len});
  EXPECT_EQ(b.n_targets, ex->n_targets());
  const int64_t d = 16;
  const double alpha = 5.0, bound = alpha / std::sqrt(static_cast<double>(len * d));
  const at::Tensor noise = add_neftune_noise(at::zeros({1, len, d}), b, 42, 1, alpha);
  const double max = noise.abs().max().item<double>();
  EXPECT_LE(max, bound * (1 + 1e-6));  // fp32 rounding of the scale
  EXPECT_GT(max, 0.99 * bound);        // all L_i * d > 1000 draws below 0.99: probability 0.99^1000 < 1e-4
  // Every real token gets noise, trained or not.
  EXPECT_GT(noise[0].abs().sum(1).min().item<double>(), 0.0);
}

// ---- datasets and training ----

std::string conversation_jsonl() {
  return R"({"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]})"
         "\n"
         R"({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": "6"}]})"
         "\n"
         R"({"conversations": [{"from": "human", "value": "Say hello."}, {"from": "gpt", "value": "Hello!"}]})"
         "\n"
         R"({"instruction": "Name a fruit.", "input": "", "output": "Apple."})"
         "\n";
}

// The replies of conversation_jsonl(), each trained with its end-of-turn token.
const std::vector<std::string> kReplies = {"Paris.", "4", "6", "Hello!", "Apple."};

TEST(ChatDatasets, AutoTemplateComesFromTheTokenizerDirectory) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  TempDir d;
  write_file(d / "chat.jsonl", conversation_jsonl());
  const auto cfg = config::parse_config(
      "", "test", {"tokenizer.kind=hf", "tokenizer.path=" + dir, "data.format=auto", "data.train=" + d / "chat.jsonl"});
  const run::Datasets ds = run::load_datasets(cfg, tok);
  ASSERT_TRUE(ds.chat_template);
  EXPECT_EQ(ds.chat_template->family, ChatFamily::llama3);
  ASSERT_EQ(ds.train.size(), 4u);
  // Targets: each reply's tokens (a clean boundary after the header's "\n\n") and its <|eot_id|>.
  int64_t want = 0, got = 0;
  for (const auto& r : kReplies) want += static_cast<int64_t>(tok.encode(r, false).size()) + 1;
  for (const auto& e : ds.train) got += e.n_targets();
  EXPECT_EQ(got, want);
  EXPECT_THAT(run::describe(ds), HasSubstr("4 conversations (llama3 template, loss on assistant)"));

  // auto with nothing to read a template from, or a directory without one: errors with the choices.
  const auto byte_cfg = config::parse_config("", "test", {"data.format=auto", "data.train=" + d / "chat.jsonl"});
  tok::ByteTokenizer byte;
  EXPECT_THAT(
      error_of([&] { run::load_datasets(byte_cfg, byte); }),
      HasSubstr("data.chat_template: auto: no tokenizer.path or model.path to read a chat_template from: set "
                "data.chat_template to the model's template (llama3 | chatml | qwen3 | llama2 | mistral | alpaca)"));
  fs::create_directories(d / "empty");
  EXPECT_THAT(error_of([&] { load_chat_template(d / "empty", "data.chat_template"); }),
              HasSubstr("has no tokenizer_config.json or chat_template.jinja"));
  write_file(d / "empty/tokenizer_config.json", R"({"chat_template": "{{ messages }}"})");
  EXPECT_THAT(error_of([&] { load_chat_template(d / "empty", "data.chat_template"); }),
              HasSubstr("chat_template is none of the built-in families"));
  // HF's list of named templates: the "default" one.
  const json jcfg = test::read_json(dir + "/tokenizer_config.json");
  write_file(d / "empty/tokenizer_config.json",
             json{{"chat_template", json::array({json{{"name", "tool_use"}, {"template", "{{ tools }}"}},
                                                 json{{"name", "default"}, {"template", jcfg["chat_template"]}}})}}
                 .dump());
  EXPECT_EQ(load_chat_template(d / "empty", "k").family, ChatFamily::llama3);
  // Instruction data with auto needs no template: the Alpaca prompt, as before.
  write_file(d / "alpaca.json", R"([{"instruction": "Name a fruit.", "input": "", "output": "Apple."}])");
  const auto alpaca_cfg = config::parse_config("", "test", {"data.format=auto", "data.train=" + d / "alpaca.json"});
  const run::Datasets a = run::load_datasets(alpaca_cfg, byte);
  EXPECT_FALSE(a.chat_template);
  EXPECT_EQ(a.train[0].ids,
            make_examples({{"Name a fruit.", "", "Apple."}}, byte, 512, config::TooLong::error, "t")[0].ids);
}

// A few optimizer steps on conversations with the Llama 3 tokenizer (vocab 128256, so d=16 and one layer).
// Reference for the targets: each reply encoded alone plus its end-of-turn token.
TEST(ChatTrain, AFewStepsOnConversationsCountTheMaskedTokens) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  TempDir d;
  write_file(d / "chat.jsonl", conversation_jsonl());
  const auto cfg = config::parse_config(
      "", "test",
      {"output_dir=" + d / "run", "tokenizer.kind=hf", "tokenizer.path=" + dir, "model.init.dim=16",
       "model.init.n_layers=1", "model.init.n_heads=2", "model.init.n_kv_heads=1", "model.init.hidden_dim=32",
       "data.format=auto", "data.train=" + d / "chat.jsonl", "data.max_seq_len=128", "train.micro_batch_size=2",
       "train.accumulation_steps=2", "train.max_steps=3", "train.lr=1e-3", "neftune.alpha=5", "logging.progress=off",
       "logging.level=warn"});
  run::Trainer t(cfg, dist::world());
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  int64_t want = 0;
  for (const auto& r : kReplies) want += static_cast<int64_t>(tok.encode(r, false).size()) + 1;
  int64_t mask_sum = 0;
  for (const auto& e : t.datasets().train) mask_sum += std::count(e.train.begin(), e.train.end(), 1);
  EXPECT_EQ(mask_sum, want);
  for (int s = 0; s < 3; ++s) {
    const run::StepStats st = t.train_step();
    EXPECT_TRUE(std::isfinite(st.loss)) << s;
    EXPECT_GT(st.loss, 0.0);
    EXPECT_EQ(st.targets, want) << s;  // the global batch (2 x 2) is the whole dataset (4 samples)
  }
}

// `generate --chat` renders the prompt as a user turn with the assistant header and stops at <|eot_id|>.
// The model is built to always predict <|eot_id|>: every embedding row is u = 1, the decoder layers are
// zero (the residual passes u on), and only the LM head's <|eot_id|> row is u, so that logit is d > 0 = the
// others.
TEST(GenerateChat, StopsAtTheEndOfTurnToken) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/llama3");
  const tok::Tokenizer& tok = fixture_tokenizer(dir);
  const int32_t eot = single_id(tok, "<|eot_id|>");
  TempDir d;
  config::ModelInit init;
  init.dim = 16;
  init.n_layers = 1;
  init.n_heads = 2;
  init.n_kv_heads = 1;
  init.hidden_dim = 32;
  init.tie_embeddings = false;
  const auto mc = model::LlamaConfig::from_init(init, tok.vocab_size(), tok.bos_id(), tok.eos_id());
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : model::all_params(mc)) shapes[p.name] = p.shape;
  model::write_hf_model(
      d / "m", mc,
      [&](const std::string& name) {
        at::Tensor w = at::zeros(shapes.at(name));
        if (name == model::kEmbedName || name == model::kNormName) w.fill_(1.0);
        if (name == model::kLmHeadName) w[eot].fill_(1.0);
        return w;
      },
      model::HfWriteOptions{});
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(dir + "/" + f, d / "m/" + f);
  const auto run = [&](const std::string& flags) {
    const auto r = test::run_command(test::neftune_bin() + " generate --model " + d / "m" +
                                     " --prompt 'Hi' --max-new-tokens 4 --temperature 0 --json " + flags + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const size_t last = r.output.rfind("\n{");  // the JSON line comes last, after any log lines
    return r.exit_code == 0 ? json::parse(r.output.substr(last == std::string::npos ? 0 : last + 1)) : json::object();
  };
  const json chat = run("--chat");
  EXPECT_EQ(chat["prompt_ids"].get<std::vector<int32_t>>(),
            tok.encode("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\n",
                       false));
  EXPECT_EQ(chat["output_ids"].get<std::vector<int32_t>>(), std::vector<int32_t>{eot});
  EXPECT_EQ(chat["text"], "");
  // Without --chat only EOS stops it: <|eot_id|> four times (decoded as nothing: a special token).
  const json raw = run("--raw");
  EXPECT_EQ(raw["output_ids"].get<std::vector<int32_t>>(), std::vector<int32_t>(4, eot));
}

}  // namespace
}  // namespace neftune::data
