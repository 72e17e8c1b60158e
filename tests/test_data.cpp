// Records, the prompt template, tokenization with truncation, collation, the epoch sampler, the global
// batch against the data, and UTF-8 repair of decoded text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <set>

#include "config/config.h"
#include "tests/test_util.h"
#include "trainer/data/batch.h"
#include "trainer/data/builtin_tasks.h"
#include "trainer/data/examples.h"
#include "trainer/data/prompt_template.h"
#include "trainer/data/records.h"
#include "trainer/data/sampler.h"
#include "trainer/run/datasets.h"
#include "trainer/tokenizer/utf8.h"

namespace neftune::data {
namespace {

using test::TempDir;
using test::write_file;
using ::testing::HasSubstr;
using ::testing::Not;

using test::error_of;

TEST(Template, IsTheAlpacaTemplateEndingWithResponseNewline) {
  EXPECT_EQ(format_prompt("Add 2 and 3.", ""),
            "Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\nAdd 2 and 3.\n\n### Response:\n");
  EXPECT_EQ(format_prompt("Reverse it.", "abc"),
            "Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n### Instruction:\nReverse it.\n\n### "
            "Input:\nabc\n\n### Response:\n");
}

TEST(Records, ReadsAlpacaArrayJsonlAndDolly) {
  TempDir d;
  write_file(d / "a.json",
             R"([{"instruction":"i1","input":"","output":"o1"},{"instruction":"i2","input":"x","output":"o2"}])");
  write_file(
      d / "a.jsonl",
      "{\"instruction\":\"i1\",\"output\":\"o1\"}\n\n{\"instruction\":\"i2\",\"input\":\"x\",\"output\":\"o2\"}\n");
  write_file(d / "d.jsonl", R"({"instruction":"q","context":"c","response":"r","category":"open_qa"})");
  for (const auto* name : {"a.json", "a.jsonl"}) {
    const auto r = read_records(d / name, config::DataFormat::alpaca, config::OnMalformed::error);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[1].instruction, "i2");
    EXPECT_EQ(r[1].input, "x");
    EXPECT_EQ(r[1].output, "o2");
  }
  for (auto fmt : {config::DataFormat::dolly, config::DataFormat::auto_detect}) {
    const auto r = read_records(d / "d.jsonl", fmt, config::OnMalformed::error);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].input, "c");
    EXPECT_EQ(r[0].output, "r");
  }
}

TEST(Records, RealAlpacaFixtureLoads) {
  NEFTUNE_REQUIRE_FIXTURE(path, "instructions/alpaca_data_200.json");
  const auto r = read_records(path, config::DataFormat::alpaca, config::OnMalformed::error);
  EXPECT_EQ(r.size(), 200u);
  EXPECT_FALSE(r[0].output.empty());
}

TEST(Records, MalformedRecordsNameFileAndIndexOrAreSkippedAndCounted) {
  TempDir d;
  write_file(d / "bad.json",
             R"([{"instruction":"i","output":"o"},{"instruction":"i"},{"instruction":"i","output":5}])");
  EXPECT_THAT(error_of([&] { read_records(d / "bad.json", config::DataFormat::alpaca, config::OnMalformed::error); }),
              HasSubstr("bad.json: record 1: field 'output' is missing"));
  ReadStats st;
  const auto r = read_records(d / "bad.json", config::DataFormat::alpaca, config::OnMalformed::skip, &st);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(st.skipped_malformed, 2);
  write_file(d / "bad.jsonl", "{\"instruction\":\"i\",\"output\":\"o\"}\n{broken\n");
  EXPECT_THAT(error_of([&] { read_records(d / "bad.jsonl", config::DataFormat::alpaca, config::OnMalformed::error); }),
              HasSubstr("bad.jsonl: record 1 (line 2): not valid JSON"));
}

// A daemon job may name any readable file as its data (data.train: /etc/shadow): the error it gets back
// over HTTP says where the file stops being JSON, never what the file holds.
TEST(Records, ParseErrorsNeverQuoteTheFilesBytes) {
  TempDir d;
  // A raw control character inside a string: the parser's own message would quote the string so far.
  write_file(d / "shadow", "{\"root\": \"$6$s3cretHash\t:19000\"}\n");
  write_file(d / "arr.json", "[{\"instruction\": \"root:s3cretHash\t\"}]");
  for (const char* name : {"shadow", "arr.json"}) {
    const std::string err =
        error_of([&] { read_records(d / name, config::DataFormat::alpaca, config::OnMalformed::error); });
    EXPECT_THAT(err, HasSubstr("not valid JSON")) << err;
    EXPECT_THAT(err, HasSubstr("line 1")) << err;  // the position stays
    EXPECT_THAT(err, Not(HasSubstr("s3cret"))) << err;
    EXPECT_THAT(err, Not(HasSubstr("root:"))) << err;
  }
}

TEST(Records, EmptyOrMissingDatasetsAreErrors) {
  TempDir d;
  write_file(d / "empty.jsonl", "\n  \n");
  write_file(d / "none.json", "[]");
  EXPECT_THAT(
      error_of([&] { read_records(d / "empty.jsonl", config::DataFormat::alpaca, config::OnMalformed::error); }),
      HasSubstr("empty"));
  EXPECT_THAT(error_of([&] { read_records(d / "none.json", config::DataFormat::alpaca, config::OnMalformed::error); }),
              HasSubstr("empty dataset"));
  EXPECT_THAT(error_of([&] { read_records(d / "nope.json", config::DataFormat::alpaca, config::OnMalformed::error); }),
              HasSubstr("nope.json: cannot open"));
}

// A byte order mark (Windows editors write one) must not turn a JSON array into "JSONL with a broken first
// line": with or without it, both layouts give the same records.
TEST(Records, AByteOrderMarkIsSkippedInJsonArraysAsInJsonl) {
  TempDir d;
  const std::string bom = "\xEF\xBB\xBF";
  const std::string array = R"([{"instruction":"i1","output":"o1"},{"instruction":"i2","input":"x","output":"o2"}])";
  const std::string lines =
      "{\"instruction\":\"i1\",\"output\":\"o1\"}\n{\"instruction\":\"i2\",\"input\":\"x\",\"output\":\"o2\"}\n";
  write_file(d / "plain.json", array);
  write_file(d / "bom.json", bom + array);
  write_file(d / "bom.jsonl", bom + lines);
  write_file(d / "bom_space.json", bom + "\n  " + array);
  const auto ref = read_records(d / "plain.json", config::DataFormat::alpaca, config::OnMalformed::error);
  for (const char* name : {"bom.json", "bom.jsonl", "bom_space.json"}) {
    const auto r = read_records(d / name, config::DataFormat::alpaca, config::OnMalformed::error);
    ASSERT_EQ(r.size(), ref.size()) << name;
    for (size_t i = 0; i < r.size(); ++i) {
      EXPECT_EQ(r[i].instruction, ref[i].instruction) << name;
      EXPECT_EQ(r[i].input, ref[i].input) << name;
      EXPECT_EQ(r[i].output, ref[i].output) << name;
    }
  }
  write_file(d / "only_bom.json", bom + "\n");
  EXPECT_THAT(
      error_of([&] { read_records(d / "only_bom.json", config::DataFormat::alpaca, config::OnMalformed::error); }),
      HasSubstr("the data file is empty"));
}

// A directory opens as a stream on Linux and reads as nothing: it was reported as "the data file is
// empty". It is named as a directory, and through load_datasets with the config key.
TEST(Records, ADirectoryIsReportedAsOneWithItsKey) {
  TempDir d;
  std::filesystem::create_directories(d / "data");
  EXPECT_THAT(error_of([&] { read_records(d / "data", config::DataFormat::alpaca, config::OnMalformed::error); }),
              HasSubstr("data: is a directory, not a data file"));
  tok::ByteTokenizer t;
  for (const char* key : {"train", "eval"}) {
    const auto cfg = config::parse_config(
        "", "test", {"data.builtin_train_size=16", std::string("data.") + key + "=" + (d / "data")});
    const std::string err = error_of([&] { run::load_datasets(cfg, t); });
    EXPECT_THAT(err, HasSubstr(std::string("config: data.") + key + ": " + (d / "data") + " is a directory")) << key;
    EXPECT_THAT(err, ::testing::Not(HasSubstr("empty"))) << key;
  }
}

// The global batch (micro-batch x accumulation x ranks) against the training examples, computed without
// overflow: over them a step would repeat samples, and a huge value only fills memory.
TEST(Datasets, AGlobalBatchOverTheTrainingExamplesIsRefused) {
  tok::ByteTokenizer t;
  auto cfg_with = [](const std::string& mbs, const std::string& accum) {
    return config::parse_config("", "test",
                                {"data.builtin_train_size=16", "data.builtin_eval_size=0",
                                 "train.micro_batch_size=" + mbs, "train.accumulation_steps=" + accum});
  };
  const auto small = cfg_with("4", "2");
  const run::Datasets d = run::load_datasets(small, t);
  ASSERT_EQ(d.train.size(), 16u);
  EXPECT_EQ(error_of([&] { run::check_global_batch(small, 2, d); }), "");  // 4 x 2 x 2 = 16: every example once
  EXPECT_THAT(error_of([&] { run::check_global_batch(small, 3, d); }),
              HasSubstr("train.micro_batch_size 4 x train.accumulation_steps 2 x 3 rank(s) = 24 samples per step (the "
                        "global batch) exceeds the 16 training examples"));
  EXPECT_THAT(error_of([&] { run::check_global_batch(small, 3, d); }), HasSubstr("raise data.builtin_train_size"));
  // 2^20 x 2^20 x 2^30 overflows 64 bits: refused, not wrapped around to something small.
  const auto huge = cfg_with("1048576", "1048576");
  EXPECT_THAT(error_of([&] { run::check_global_batch(huge, 1 << 30, d); }),
              HasSubstr("= more than 2^63 samples per step"));
}

TEST(Examples, LabelsCoverResponseAndEosOnly) {
  tok::ByteTokenizer t;
  const auto ex = make_examples({{"Say hi.", "", "hi"}}, t, 512, config::TooLong::error, "test");
  ASSERT_EQ(ex.size(), 1u);
  const std::string prompt = format_prompt("Say hi.", "");
  const int64_t n_prompt = static_cast<int64_t>(prompt.size() + 1);  // BOS + prompt bytes
  // The mask: 0 over BOS + prompt, 1 over 'h', 'i', EOS.
  std::vector<uint8_t> expected(static_cast<size_t>(n_prompt), 0);
  expected.insert(expected.end(), 3, 1);
  EXPECT_EQ(ex[0].train, expected);
  EXPECT_EQ(ex[0].n_targets(), 3);  // 'h', 'i', EOS
  EXPECT_EQ(ex[0].ids.back(), t.eos_id());
  const Batch b = collate(ex, {{0, 0}}, t.pad_id());
  // Position t predicts ids[t+1]: the first target sits at n_prompt - 1.
  const auto tg = b.targets[0];
  EXPECT_EQ(tg[n_prompt - 2].item<int64_t>(), -100);
  EXPECT_EQ(tg[n_prompt - 1].item<int64_t>(), 'h');
  EXPECT_EQ(tg[n_prompt].item<int64_t>(), 'i');
  EXPECT_EQ(tg[n_prompt + 1].item<int64_t>(), t.eos_id());
  EXPECT_EQ(tg[n_prompt + 2].item<int64_t>(), -100);  // EOS predicts nothing
  EXPECT_EQ(b.n_targets, 3);
}

// A mask with gaps (several trained spans, as in a conversation): every flagged id is the target of the
// position before it, nothing else is, and the first id is never one.
TEST(Collate, TargetsFollowThePerTokenMask) {
  Example e;
  e.ids = {10, 11, 12, 13, 14, 15, 16};
  e.train = {1, 0, 1, 1, 0, 0, 1};  // train[0] is ignored: nothing predicts the first token
  EXPECT_EQ(e.n_targets(), 3);
  const Batch b = collate({e}, {{0, 0}}, 0);
  std::vector<int64_t> tg(b.targets.data_ptr<int64_t>(), b.targets.data_ptr<int64_t>() + 7);
  EXPECT_EQ(tg, (std::vector<int64_t>{-100, 12, 13, -100, -100, 16, -100}));
  EXPECT_EQ(b.n_targets, 3);
  EXPECT_EQ(b.target_ids.numel(), 3);
  e.train.pop_back();  // a mask that does not cover the ids is a bug, not a silent shift
  EXPECT_THROW(collate({e}, {{0, 0}}, 0), c10::Error);
}

// Tokenizing asks `stop` every 256 records and gives up with StopRequested when it says yes.
TEST(Examples, TokenizingStopsWhenAStopIsRequested) {
  tok::ByteTokenizer t;
  const std::vector<Record> rs(1000, Record{"Say hi.", "", "hi"});
  int asked = 0;
  const auto stop_at_third = [&] { return ++asked == 3; };
  EXPECT_THAT(error_of([&] { make_examples(rs, t, 512, config::TooLong::error, "f.json", nullptr, stop_at_third); }),
              HasSubstr("f.json: stop requested while tokenizing (record 512 of 1000)"));
  EXPECT_THROW(make_examples(rs, t, 512, config::TooLong::error, "f.json", nullptr, [] { return true; }),
               StopRequested);
  EXPECT_EQ(make_examples(rs, t, 512, config::TooLong::error, "f.json", nullptr, [] { return false; }).size(), 1000u);
}

TEST(Examples, TruncationCutsThePromptStartAndKeepsTheResponse) {
  tok::ByteTokenizer t;
  const Record r{"Instruction with a long body " + std::string(200, 'x'), "", "the answer"};
  TokenizeStats st;
  const auto ex = make_examples({r}, t, 100, config::TooLong::truncate, "test", &st);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].ids.size(), 100u);
  EXPECT_EQ(st.truncated_prompt, 1);
  const std::string text = t.decode(ex[0].ids);
  EXPECT_EQ(ex[0].ids[0], t.bos_id());
  EXPECT_THAT(text, ::testing::EndsWith(std::string(kResponseTail) + "the answer"));
  EXPECT_EQ(ex[0].ids.back(), t.eos_id());
  // A response longer than the room: the tail of the template survives, the response is cut at its end.
  const Record huge{"Q", "", std::string(300, 'y')};
  const auto ex2 = make_examples({huge}, t, 64, config::TooLong::truncate, "test", &st);
  EXPECT_EQ(ex2[0].ids.size(), 64u);
  EXPECT_EQ(st.truncated_response, 1);
  EXPECT_THAT(t.decode(ex2[0].ids), HasSubstr(kResponseTail));
  EXPECT_NE(ex2[0].ids.back(), t.eos_id());
}

TEST(Examples, TooLongSkipAndErrorModes) {
  tok::ByteTokenizer t;
  const std::vector<Record> rs = {{"short", "", "a"}, {std::string(500, 'q'), "", "b"}};
  TokenizeStats st;
  EXPECT_EQ(make_examples(rs, t, 200, config::TooLong::skip, "f.json", &st).size(), 1u);
  EXPECT_EQ(st.skipped_too_long, 1);
  EXPECT_THAT(error_of([&] { make_examples(rs, t, 200, config::TooLong::error, "f.json"); }),
              HasSubstr("f.json: record 1: 6"));
  EXPECT_THAT(error_of([&] { make_examples({rs[1]}, t, 200, config::TooLong::skip, "f.json"); }),
              HasSubstr("no examples left"));
}

TEST(Collate, DynamicRightPaddingWithMask) {
  tok::ByteTokenizer t;
  const auto ex = make_examples({{"a", "", "1"}, {"bbbbbbbb", "", "22"}}, t, 512, config::TooLong::error, "t");
  const Batch b = collate(ex, {{0, 0}, {1, 0}}, t.pad_id());
  const int64_t l0 = static_cast<int64_t>(ex[0].ids.size()), l1 = static_cast<int64_t>(ex[1].ids.size());
  EXPECT_EQ(b.input_ids.size(1), std::max(l0, l1));  // padded to the longest in this batch only
  EXPECT_EQ(b.lengths, (std::vector<int64_t>{l0, l1}));
  EXPECT_EQ(b.attention_mask[0].sum().item<int64_t>(), l0);
  EXPECT_EQ(b.input_ids[0][l0].item<int64_t>(), t.pad_id());
  EXPECT_TRUE((b.targets[0].narrow(0, l0 - 1, b.input_ids.size(1) - l0 + 1) == -100).all().item<bool>());
  EXPECT_EQ(b.n_tokens, l0 + l1);
}

TEST(Sampler, EachEpochIsAPermutationAndDrawsCrossEpochs) {
  EpochSampler s(10, 7);
  const auto first = s.next(10);
  std::set<int64_t> seen;
  for (const auto& p : first) {
    seen.insert(p.index);
    EXPECT_EQ(p.epoch, 0);
  }
  EXPECT_EQ(seen.size(), 10u);
  // A draw that runs past the end resamples: the rest comes from epoch 1's permutation.
  EpochSampler s2(10, 7);
  s2.next(8);
  const auto straddle = s2.next(4);
  EXPECT_EQ(straddle[0].epoch, 0);
  EXPECT_EQ(straddle[1].epoch, 0);
  EXPECT_EQ(straddle[2].epoch, 1);
  EXPECT_EQ(straddle[2].index, EpochSampler::permutation(10, 7, 1)[0]);
  EXPECT_EQ(s2.epoch(), 1);
  EXPECT_NE(EpochSampler::permutation(100, 7, 0), EpochSampler::permutation(100, 7, 1));
  EXPECT_EQ(EpochSampler::permutation(100, 7, 3), EpochSampler::permutation(100, 7, 3));
  // More than the dataset in one draw is a caller's bug (the trainer refuses such a global batch first):
  // thrown at once, not a vector grown toward the request.
  EpochSampler s3(10, 7);
  EXPECT_THAT(error_of([&] { s3.next(1000000000); }), HasSubstr("a draw of 1000000000 exceeds the 10 samples"));
  EXPECT_EQ(s3.next(10).size(), 10u);
}

// What `generate --json` prints for decoded bytes: every ill-formed sequence becomes one U+FFFD per
// maximal subpart; checked against the Unicode Standard's own example (Table 3-8) and against
// nlohmann::json's independent decoder (its "replace" error handler) on random byte strings made of the
// bytes where UTF-8 has its edge cases.
TEST(Utf8, IllFormedBytesBecomeReplacementCharacters) {
  using tok::utf8::lossy;
  for (const std::string ok :
       {"", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF"})
    EXPECT_EQ(lossy(ok), ok);
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + r + r + r + "b" + r + "c" + r + r + "d");  // Table 3-8
  EXPECT_EQ(lossy("ab\xE2\x82"), "ab" + r);                  // a character cut by max_new_tokens
  EXPECT_EQ(lossy("\xC3\xC3"), r + r);                       // two lead bytes
  EXPECT_EQ(lossy("\xC0\xAF"), r + r);                       // overlong '/'
  EXPECT_EQ(lossy("\xED\xA0\x80"), r + r + r);               // a surrogate
  EXPECT_EQ(lossy("\xF4\x90\x80\x80"), r + r + r + r);       // above U+10FFFF
  const unsigned char edges[] = {0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
                                 0xDF, 0xE0, 0xE1, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF};
  std::mt19937 rng(2024);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    for (int n = static_cast<int>(rng() % 9); n > 0; --n) bytes += static_cast<char>(edges[rng() % sizeof edges]);
    const std::string reference =
        nlohmann::json::parse(nlohmann::json(bytes).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
            .get<std::string>();
    ASSERT_EQ(lossy(bytes), reference) << ::testing::PrintToString(bytes);
  }
}

TEST(BuiltinTasks, DeterministicCheckableAndDisjointSplits) {
  const auto train = make_builtin_tasks(2000, Split::train);
  const auto held = make_builtin_tasks(200, Split::held_out);
  EXPECT_EQ(train.size(), 2000u);
  EXPECT_EQ(make_builtin_tasks(50, Split::train)[7].output, train[7].output);
  std::set<std::string> train_prompts;
  for (const auto& r : train) train_prompts.insert(r.instruction + "|" + r.input);
  for (const auto& r : held) EXPECT_EQ(train_prompts.count(r.instruction + "|" + r.input), 0u) << r.instruction;
  std::set<std::string> tasks;
  for (const auto& r : train) tasks.insert(builtin_task_name(r));
  EXPECT_EQ(tasks.size(), 8u);
  for (const auto& r : train) {
    if (builtin_task_name(r) == "reverse") {
      EXPECT_EQ(std::string(r.input.rbegin(), r.input.rend()), r.output);
    }
    if (builtin_task_name(r) == "count") {
      EXPECT_EQ(std::to_string(r.input.size()), r.output);
    }
  }
}

}  // namespace
}  // namespace neftune::data
