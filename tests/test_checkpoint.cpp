// Checkpoints in one process: bit-exact resume (NEFTune noise, data order and epoch resampling
// included), keep_last, damaged checkpoints ignored by auto and named when explicit (a flipped bit
// found by the shard checksum), checkpoints of a different model or run refused, another run's
// checkpoints never pruned or mixed with (--overwrite moves them aside), output_dir locked and checked,
// a save that runs out of disk losing nothing, export to HF format.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

#include "config/config.h"
#include "tests/test_util.h"
#include "trainer/io/crc32c.h"
#include "trainer/io/safetensors.h"
#include "trainer/model/llama.h"
#include "trainer/run/checkpoint.h"
#include "trainer/run/checkpoint_export.h"
#include "trainer/run/checkpoint_format.h"
#include "trainer/run/metrics.h"
#include "trainer/run/run_dirs.h"
#include "trainer/run/trainer.h"

namespace neftune::run {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using ::testing::HasSubstr;

config::TrainConfig cfg_for(const std::string& out, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> sets = {"output_dir=" + out,
                                   "model.init.dim=32",
                                   "model.init.n_layers=2",
                                   "model.init.n_heads=4",
                                   "model.init.n_kv_heads=2",
                                   "model.init.hidden_dim=48",
                                   "data.builtin_train_size=20",
                                   "data.builtin_eval_size=0",
                                   "data.max_seq_len=200",
                                   "train.micro_batch_size=2",
                                   "train.accumulation_steps=2",
                                   "train.max_steps=12",
                                   "train.lr=2e-3",
                                   "train.weight_decay=0.01",
                                   "neftune.alpha=5",
                                   "logging.level=warn",
                                   "logging.progress=off"};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return config::parse_config("", "test", sets);
}

std::map<std::string, at::Tensor> weights(Trainer& t) {
  std::map<std::string, at::Tensor> w;
  t.model().for_each_full_param([&](const std::string& n, const at::Tensor& v) { w[n] = v.clone(); });
  return w;
}

std::vector<double> metric_losses(const std::string& path) {
  std::vector<double> out;
  for (const auto& l : test::read_jsonl(path))
    if (l.contains("loss")) out.push_back(l["loss"].get<double>());
  return out;
}

std::string agreed_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const dist::AgreedFailure& e) {
    return e.what();
  }
  return "";
}

TEST(Checkpoint, ResumeIsBitExact) {
  TempDir d;
  // 12 steps x 8 samples over 20 examples: four epoch boundaries, two in the middle of a step.
  Trainer a(cfg_for(d / "a"), dist::world());
  a.train();
  const auto wa = weights(a);
  const auto la = metric_losses(d / "a/metrics.jsonl");
  ASSERT_EQ(la.size(), 12u);

  std::vector<double> lb;
  {
    Trainer b1(cfg_for(d / "b"), dist::world());
    for (int i = 0; i < 5; ++i) lb.push_back(b1.train_step().loss);
    b1.save_checkpoint();
  }
  // checkpoint.resume: auto. Activation checkpointing may change on resume (it changes no numerics).
  Trainer b2(cfg_for(d / "b", {"train.activation_checkpointing=true"}), dist::world());
  EXPECT_EQ(b2.total_steps(), 12);
  b2.train();
  for (double l : metric_losses(d / "b/metrics.jsonl")) lb.push_back(l);
  ASSERT_EQ(lb.size(), 12u);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(lb[i], la[i]) << "step " << i + 1;  // bit-identical
  const auto wb = weights(b2);
  for (const auto& [name, w] : wa) EXPECT_TRUE(at::equal(w, wb.at(name))) << name;
  // The end of training wrote a final checkpoint too.
  EXPECT_TRUE(fs::exists(d / "b/checkpoints/step-00000012/meta.json"));
  EXPECT_EQ(test::read_file(d / "b/checkpoints/latest"), "step-00000012\n");
}

TEST(Checkpoint, AResumeAtTheLastStepRunsNoStepAndMakesUpNoLoss) {
  TempDir d;
  const TrainSummary first = Trainer(cfg_for(d / "r", {"train.max_steps=3"}), dist::world()).train();
  ASSERT_TRUE(first.final_loss.has_value());
  EXPECT_EQ(*first.final_loss, metric_losses(d / "r/metrics.jsonl").back());
  // As after a stop during the final eval: the checkpoint of the last step is there, nothing is left to run.
  const TrainSummary again = Trainer(cfg_for(d / "r", {"train.max_steps=3"}), dist::world()).train();
  EXPECT_EQ(again.steps, 3);
  EXPECT_FALSE(again.final_loss.has_value());
  EXPECT_EQ(metric_losses(d / "r/metrics.jsonl").size(), 3u);
}

TEST(Checkpoint, KeepLastAndDamagedCheckpoints) {
  TempDir d;
  {
    Trainer t(cfg_for(d / "r", {"checkpoint.every_steps=2", "checkpoint.keep_last=2", "train.max_steps=8"}),
              dist::world());
    t.train();
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(d / "r/checkpoints")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step-00000006", "step-00000008"}));

  // Truncate the newest one's rank file: auto skips it (with a warning) and resumes from step 6.
  const std::string rank_file = d / "r/checkpoints/step-00000008/rank-00000-of-00001.safetensors";
  const std::string bytes = test::read_file(rank_file);
  test::write_file(rank_file, bytes.substr(0, bytes.size() / 3));
  {
    Trainer t(cfg_for(d / "r", {"train.max_steps=8"}), dist::world());
    EXPECT_EQ(t.train_step().step, 7);
  }
  // Named explicitly, the damaged checkpoint is an error naming the file.
  EXPECT_THAT(agreed_error([&] {
                Trainer t(cfg_for(d / "r", {"checkpoint.resume=" + (d / "r/checkpoints/step-00000008")}),
                          dist::world());
              }),
              HasSubstr("rank-00000-of-00001.safetensors: tensor 'embed/exp_avg_sq': data ends at byte"));
}

TEST(Checkpoint, RefusesADifferentModelOrRunAndTouchesNothing) {
  TempDir d;
  {
    Trainer t(cfg_for(d / "r", {"train.max_steps=2"}), dist::world());
    t.train();
  }
  const std::string ckpt = d / "r/checkpoints/step-00000002";
  const std::string before = test::read_file(ckpt + "/rank-00000-of-00001.safetensors");
  EXPECT_THAT(
      agreed_error([&] { Trainer t(cfg_for(d / "r", {"model.init.hidden_dim=64"}), dist::world()); }),
      HasSubstr("meta.json: written for a different model (checkpoint vs this run: intermediate_size 48 vs 64)"));
  EXPECT_THAT(agreed_error([&] { Trainer t(cfg_for(d / "r", {"train.lr=1e-3"}), dist::world()); }),
              HasSubstr("was written by a different run (train.lr: 0.002 -> 0.001)"));
  EXPECT_THAT(agreed_error([&] { Trainer t(cfg_for(d / "r", {"train.accumulation_steps=1"}), dist::world()); }),
              HasSubstr("global batch of 4 samples, this run has 2"));
  // What may change: the run length, checkpointing, logging.
  { Trainer t(cfg_for(d / "r", {"train.max_steps=3", "checkpoint.every_steps=1"}), dist::world()); }
  EXPECT_EQ(test::read_file(ckpt + "/rank-00000-of-00001.safetensors"), before);

  // A header that lies about its offsets, and a missing rank file.
  const std::string lying = d / "lying";
  fs::copy(ckpt, lying, fs::copy_options::recursive);
  std::string b = test::read_file(lying + "/rank-00000-of-00001.safetensors");
  const auto pos = b.find("\"data_offsets\":[0,");
  ASSERT_NE(pos, std::string::npos);
  b.replace(pos, 18, "\"data_offsets\":[9,");
  test::write_file(lying + "/rank-00000-of-00001.safetensors", b);
  EXPECT_THAT(agreed_error([&] { Trainer t(cfg_for(d / "x", {"checkpoint.resume=" + lying}), dist::world()); }),
              HasSubstr("lying/rank-00000-of-00001.safetensors: tensor"));
  fs::remove(lying + "/rank-00000-of-00001.safetensors");
  EXPECT_THAT(agreed_error([&] { Trainer t(cfg_for(d / "x", {"checkpoint.resume=" + lying}), dist::world()); }),
              HasSubstr("rank-00000-of-00001.safetensors: missing rank file"));
}

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Before: a fresh run (resume: never, another seed) in the output_dir of a 5-step run exited 0, but
// keep_last pruned its own step-1..3 because the old step-4/5 sorted as newer, and `latest` named a
// deleted directory.
TEST(Checkpoint, AFreshRunNeverPrunesOrMixesWithAnotherRunsCheckpoints) {
  TempDir d;
  const std::vector<std::string> every_step = {"checkpoint.every_steps=1", "checkpoint.keep_last=2"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), every_step.begin(), every_step.end());
    return cfg_for(d / "x", extra);
  };
  { Trainer(with({"train.max_steps=5"}), dist::world()).train(); }
  const std::string ckpts = d / "x/checkpoints";
  ASSERT_EQ(listing(ckpts), (std::vector<std::string>{"latest", "step-00000004", "step-00000005"}));
  const std::string old_shard = test::read_file(ckpts + "/step-00000005/rank-00000-of-00001.safetensors");

  const auto fresh = with({"train.max_steps=3", "checkpoint.resume=never", "train.seed=7"});
  EXPECT_THAT(agreed_error([&] { Trainer t(fresh, dist::world()); }),
              HasSubstr("holds checkpoints of another run (step-00000004, step-00000005) and this run starts fresh "
                        "(checkpoint.resume: never): to continue that run, --set checkpoint.resume=auto"));
  EXPECT_EQ(listing(ckpts), (std::vector<std::string>{"latest", "step-00000004", "step-00000005"}));
  EXPECT_EQ(test::read_file(ckpts + "/step-00000005/rank-00000-of-00001.safetensors"), old_shard);

  // --overwrite: the old checkpoints move aside, intact; the new run keeps (and prunes) only its own.
  { Trainer(fresh, dist::world(), {/*overwrite=*/true}).train(); }
  EXPECT_EQ(listing(ckpts), (std::vector<std::string>{"latest", "step-00000002", "step-00000003"}));
  EXPECT_EQ(test::read_file(ckpts + "/latest"), "step-00000003\n");
  std::vector<std::string> aside;
  for (const auto& e : fs::directory_iterator(d / "x"))
    if (e.path().filename().string().rfind("checkpoints.replaced-", 0) == 0) aside.push_back(e.path().string());
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_EQ(listing(aside[0]), (std::vector<std::string>{"latest", "step-00000004", "step-00000005"}));
  EXPECT_EQ(test::read_file(aside[0] + "/step-00000005/rank-00000-of-00001.safetensors"), old_shard);

  // A checkpoint of another run dropped among a resumed run's own is refused too (never pruned).
  fs::copy(aside[0] + "/step-00000004", ckpts + "/step-00000001", fs::copy_options::recursive);
  auto meta = test::read_json(ckpts + "/step-00000001/meta.json");  // its step as its name says (no checksum)
  meta["step"] = 1;
  meta.erase("checksum");
  test::write_file(ckpts + "/step-00000001/meta.json", meta.dump(2));
  EXPECT_THAT(agreed_error([&] {
                Trainer t(with({"train.max_steps=6", "train.seed=7"}), dist::world());
              }),
              HasSubstr("holds checkpoints of another run (step-00000001) and this run resumed from"));
  EXPECT_TRUE(fs::exists(ckpts + "/step-00000001/meta.json"));
}

// Before: a checkpoint shard with a flipped bit resumed silently (a flipped exponent bit then stopped
// training with "loss is nan"). Now meta.json records each shard file's size and CRC-32C.
TEST(Checkpoint, AFlippedBitIsFoundByTheChecksumAndAutoFallsBackToThePreviousCheckpoint) {
  TempDir d;
  { Trainer(cfg_for(d / "r", {"checkpoint.every_steps=2", "train.max_steps=4"}), dist::world()).train(); }
  const std::string newest = d / "r/checkpoints/step-00000004", file = newest + "/rank-00000-of-00001.safetensors";
  // The checksum in meta.json is the file's CRC-32C, computed here by the table implementation.
  const std::string bytes = test::read_file(file);
  const auto meta = nlohmann::json::parse(test::read_file(newest + "/meta.json"));
  EXPECT_EQ(meta["files"]["rank-00000-of-00001.safetensors"]["checksum"],
            io::crc32c_text(io::crc32c_extend_portable(0, bytes.data(), bytes.size())));
  EXPECT_EQ(meta["files"]["rank-00000-of-00001.safetensors"]["bytes"], bytes.size());
  EXPECT_FALSE(meta["run_id"].get<std::string>().empty());

  std::string flipped = bytes;
  flipped[bytes.size() - 5] ^= 0x40;  // in the last tensor's data: the structure still validates
  test::write_file(file, flipped);
  EXPECT_THAT(
      agreed_error([&] { Trainer t(cfg_for(d / "y", {"checkpoint.resume=" + newest}), dist::world()); }),
      HasSubstr("rank-00000-of-00001.safetensors: corrupt: " + std::to_string(bytes.size()) + " bytes with crc32c:"));
  EXPECT_THROW(validate_checkpoint(newest), io::CheckpointError);
  Trainer t(cfg_for(d / "r", {"train.max_steps=4"}), dist::world());  // resume: auto
  EXPECT_EQ(t.train_step().step, 3);
}

// Before: two runs started 0.5 s apart on one output_dir both exited 0 with interleaved metrics.jsonl.
TEST(Checkpoint, OutputDirIsLockedAndCheckedBeforeAnyWork) {
  TempDir d;
  {
    const DirLock held(d / "", "output_dir");  // what a running neftune holds on its output_dir
    EXPECT_THAT(
        agreed_error([&] { Trainer t(cfg_for(d / ""), dist::world()); }),
        HasSubstr("output_dir " + (d / "") + ": in use by another neftune run (pid " + std::to_string(::getpid())));
  }
  { Trainer t(cfg_for(d / ""), dist::world()); }  // released with its holder

  test::write_file(d / "file", "x");
  EXPECT_THAT(agreed_error([&] { Trainer t(cfg_for(d / "file"), dist::world()); }),
              HasSubstr("output_dir " + (d / "file") + ": File exists (a file is in the way"));
  EXPECT_THAT(agreed_error([&] { Trainer t(cfg_for(d / "file/sub"), dist::world()); }),
              HasSubstr("output_dir " + (d / "file/sub") + ": "));
  EXPECT_THAT(agreed_error([&] { Trainer t(cfg_for(d / std::string(300, 'n')), dist::world()); }),
              HasSubstr("File name too long (a name in the path is too long"));
  EXPECT_THAT(agreed_error([&] { Trainer t(cfg_for("/proc/neftune-out"), dist::world()); }),
              HasSubstr("output_dir /proc/neftune-out: "));
  fs::create_directories(d / "l/checkpoints/latest");
  EXPECT_THAT(agreed_error([&] { Trainer t(cfg_for(d / "l"), dist::world()); }),
              HasSubstr("latest is not a file (neftune writes the newest checkpoint's name there): remove it"));
}

TEST(Checkpoint, ExportGathersShardsIntoHfFormat) {
  TempDir d;
  Trainer t(cfg_for(d / "r", {"train.max_steps=3", "model.init.tie_embeddings=false"}), dist::world());
  t.train();
  const auto w = weights(t);
  const std::string ckpt = d / "r/checkpoints/step-00000003";
  model::HfWriteOptions o;
  export_checkpoint(ckpt, d / "hf", o);
  const auto m = model::LlamaModel::load(d / "hf", at::kFloat);
  EXPECT_TRUE(fs::exists(d / "hf/neftune_tokenizer.json"));
  // The export is the trained fp32 weights exactly: compare logits of the exported model with the
  // same weights loaded from the trainer.
  const auto direct = model::LlamaModel::from_tensors(
      t.model().config(), [&](const std::string& n) { return w.at(n); }, at::kFloat, at::kCPU);
  const at::Tensor ids = at::tensor(std::vector<int64_t>{256, 72, 105, 33}).view({1, -1});
  EXPECT_TRUE(at::equal(m.forward(ids), direct.forward(ids)));
  // Above the shard size limit the weights are split like HF's save_pretrained.
  o.max_shard_bytes = 20000;
  o.dtype = at::kBFloat16;
  export_checkpoint(ckpt, d / "hf_sharded", o);
  EXPECT_TRUE(fs::exists(d / "hf_sharded/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(d / "hf_sharded/model-00001-of-00003.safetensors") ||
              fs::exists(d / "hf_sharded/model-00001-of-00004.safetensors") ||
              fs::exists(d / "hf_sharded/model-00001-of-00005.safetensors"));
  const auto ms = model::LlamaModel::load(d / "hf_sharded", at::kFloat);
  // bf16 storage: logits move by bf16 rounding of the weights only.
  EXPECT_LT((ms.forward(ids) - m.forward(ids)).abs().max().item<double>(), 0.05);
  EXPECT_THROW(export_checkpoint(ckpt, d / "hf", o), UserError);  // never over an existing export
  // An output directory that cannot be made was a filesystem_error (exit 1).
  try {
    export_checkpoint(ckpt, "/proc/neftune-export", o);
    ADD_FAILURE() << "exported into /proc";
  } catch (const UserError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/proc/neftune-export: cannot create the output directory"));
  }
}

// A hostile-input probe found resume trusting meta.json: "step": 3 -> 4 skipped a step, a sampler position
// of 1e18 was an exit 1 without falling back, and a data file replaced by other records resumed silently.
// meta.json now carries its own checksum (an edited one is a damaged checkpoint: auto falls back), its
// step must match its directory, and it records the training data's size and CRC-32C.
TEST(Checkpoint, MetaJsonIsChecksummedAndChangedDataIsRefusedByName) {
  TempDir d;
  auto records = [](int n, const std::string& word) {
    nlohmann::json a = nlohmann::json::array();
    for (int i = 0; i < n; ++i)
      a.push_back({{"instruction", "Say " + word + " " + std::to_string(i)}, {"output", word + std::to_string(i)}});
    return a.dump();
  };
  test::write_file(d / "train.json", records(20, "yes"));
  const std::vector<std::string> data = {"data.train=" + (d / "train.json"), "checkpoint.every_steps=2",
                                         "train.max_steps=4"};
  { Trainer(cfg_for(d / "r", data), dist::world()).train(); }
  const std::string newest = d / "r/checkpoints/step-00000004", meta_path = newest + "/meta.json";
  const std::string meta_text = test::read_file(meta_path);
  auto meta = nlohmann::json::parse(meta_text);
  EXPECT_EQ(meta["train_data"]["bytes"], records(20, "yes").size());
  const std::string text = records(20, "yes");
  EXPECT_EQ(meta["train_data"]["checksum"], io::crc32c_text(io::crc32c_extend_portable(0, text.data(), text.size())));
  // The checksum is the CRC-32C of the compact dump without it, computed here with the table code.
  nlohmann::json without = meta;
  without.erase("checksum");
  const std::string dump = without.dump();
  EXPECT_EQ(meta["checksum"], io::crc32c_text(io::crc32c_extend_portable(0, dump.data(), dump.size())));

  auto resumed_step = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> sets = data;
    sets.insert(sets.end(), extra.begin(), extra.end());
    Trainer t(cfg_for(d / "r", sets), dist::world());
    return t.train_step().step;
  };
  // An edited step: a damaged checkpoint, named when explicit, skipped by auto.
  meta["step"] = 5;
  test::write_file(meta_path, meta.dump(2));
  EXPECT_THAT(agreed_error([&] { resumed_step({"checkpoint.resume=" + newest}); }),
              HasSubstr("meta.json: its content does not match its checksum (edited or damaged)"));
  EXPECT_EQ(resumed_step({}), 3);
  // Without a checksum (as written before there was one), the step must still match the directory and the
  // sampler state be a place in the data.
  meta.erase("checksum");
  test::write_file(meta_path, meta.dump(2));
  EXPECT_THAT(agreed_error([&] { resumed_step({"checkpoint.resume=" + newest}); }),
              HasSubstr("meta.json: says step 5 in a directory named step-00000004"));
  meta["step"] = 4;
  meta["sampler"]["epoch"] = -7;
  test::write_file(meta_path, meta.dump(2));
  EXPECT_THAT(agreed_error([&] { resumed_step({"checkpoint.resume=" + newest}); }),
              HasSubstr("meta.json: sampler epoch -7, position"));
  test::write_file(meta_path, meta_text);
  EXPECT_EQ(resumed_step({}), 5);

  // Other data under the same name is refused by name, with the way out.
  test::write_file(d / "train.json", records(100, "no"));
  EXPECT_THAT(agreed_error([&] { resumed_step({}); }),
              HasSubstr(d / "train.json" + ": the training data changed since " + newest + " was written"));
  // A checkpoint without the data's record, on a file cut to 5 records: its position is past the end.
  meta = nlohmann::json::parse(meta_text);
  meta.erase("checksum");
  meta.erase("train_data");
  test::write_file(meta_path, meta.dump(2));
  test::write_file(d / "train.json", records(5, "yes"));
  EXPECT_THAT(agreed_error([&] { resumed_step({}); }),
              HasSubstr("is past the 5 training examples: the data changed since it was written"));

  // Every checkpoint damaged: auto has nothing to resume, and the advice is not "set resume: auto".
  for (const char* step : {"step-00000002", "step-00000004"})
    test::write_file(d / ("r/checkpoints/" + std::string(step) + "/meta.json"), "{");
  test::write_file(d / "train.json", records(20, "yes"));
  const std::string none = agreed_error([&] { resumed_step({}); });
  EXPECT_THAT(none, HasSubstr("holds checkpoints (step-00000002, step-00000004) but none could be resumed from"));
  EXPECT_THAT(none, ::testing::Not(HasSubstr("checkpoint.resume=auto")));
}

// RLIMIT_FSIZE lowered to `bytes` (with SIGXFSZ ignored, a write past it fails with EFBIG as a write to a
// full disk fails with ENOSPC) for this process, until destroyed.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    handler_ = std::signal(SIGXFSZ, SIG_IGN);
    const rlimit lim{bytes, saved_.rlim_max};
    setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, handler_);
  }

 private:
  rlimit saved_{};
  void (*handler_)(int) = SIG_DFL;
};

std::map<std::string, std::string> files_in(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out[e.path().filename().string()] = test::read_file(e.path());
  return out;
}

// Before: a failed write of a checkpoint file said "write failed (disk full?)" as a CheckpointError (exit 2,
// as if the checkpoint were bad input). Now it is an io::WriteError with the system's reason (exit 1), and
// nothing is lost: the previous checkpoint, `latest` and final/ stay as they were, and loadable.
TEST(Checkpoint, ASaveThatRunsOutOfDiskLosesNothingAndSaysWhy) {
  TempDir d;
  { Trainer(cfg_for(d / "r", {"train.max_steps=3"}), dist::world()).train(); }
  const std::string ckpts = d / "r/checkpoints", previous = ckpts + "/step-00000003";
  const auto previous_files = files_in(previous), final_files = files_in(d / "r/final");
  const uint64_t shard_bytes = fs::file_size(previous + "/rank-00000-of-00001.safetensors");

  Trainer t(cfg_for(d / "r", {"train.max_steps=5"}), dist::world());  // resumes from step 3
  ASSERT_EQ(t.train_step().step, 4);
  std::string error;
  bool user_error = true;
  {
    const FileSizeLimit limit(shard_bytes / 2);  // the new shard file stops halfway
    try {
      t.save_checkpoint();
    } catch (const dist::AgreedFailure& e) {
      error = e.what();
      user_error = e.user_error();
    }
  }
  EXPECT_THAT(error, HasSubstr("rank-00000-of-00001.safetensors: write failed (File too large)"));
  EXPECT_FALSE(user_error);  // the environment failed, not the user's input
  EXPECT_EQ(listing(ckpts), (std::vector<std::string>{"latest", "step-00000003"}));  // no .step-00000004.tmp
  EXPECT_EQ(test::read_file(ckpts + "/latest"), "step-00000003\n");
  EXPECT_EQ(files_in(previous), previous_files);
  EXPECT_NO_THROW(validate_checkpoint(previous));
  EXPECT_EQ(files_in(d / "r/final"), final_files);
  EXPECT_NO_THROW(model::LlamaModel::load(d / "r/final", at::kFloat));
  // With room again, the same save goes through.
  EXPECT_EQ(t.save_checkpoint(), ckpts + "/step-00000004");
  EXPECT_NO_THROW(validate_checkpoint(ckpts + "/step-00000004"));
}

TEST(Checkpoint, AResumedRunKeepsTheMetricsLinesUpToItsStep) {
  TempDir d;
  const std::string kept = "{\"step\": 1, \"loss\": 2.5}\n{\"step\": 2, \"eval_loss\": 2.0}\n";
  test::write_file(d / "metrics.jsonl", kept + "{\"step\": 3, \"loss\": 2.25}\n{\"step\": 4, \"lo");
  keep_metrics_through(d / "metrics.jsonl", 2);
  EXPECT_EQ(test::read_file(d / "metrics.jsonl"), kept);
  EXPECT_FALSE(fs::exists(d / ".metrics.jsonl.tmp"));
}

}  // namespace
}  // namespace neftune::run
