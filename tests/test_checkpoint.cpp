// Checkpoints in one process: bit-exact resume (NEFTune noise, data order and epoch resampling
// included), keep_last, damaged checkpoints ignored by auto and named when explicit, checkpoints of a
// different model or run refused, export to HF format.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "config/config.h"
#include "tests/test_util.h"
#include "trainer/io/safetensors.h"
#include "trainer/model/llama.h"
#include "trainer/run/checkpoint.h"
#include "trainer/run/trainer.h"

namespace neftune::run {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using test::TempDir;

config::TrainConfig cfg_for(const std::string& out, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> sets = {"output_dir=" + out,         "model.init.dim=32",          "model.init.n_layers=2",
                                   "model.init.n_heads=4",      "model.init.n_kv_heads=2",    "model.init.hidden_dim=48",
                                   "data.builtin_train_size=20", "data.builtin_eval_size=0", "data.max_seq_len=200",
                                   "train.micro_batch_size=2",  "train.accumulation_steps=2", "train.max_steps=12",
                                   "train.lr=2e-3",             "train.weight_decay=0.01",    "neftune.alpha=5",
                                   "logging.level=warn",        "logging.progress=off"};
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
                Trainer t(cfg_for(d / "r", {"checkpoint.resume=" + (d / "r/checkpoints/step-00000008")}), dist::world());
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
  EXPECT_THAT(agreed_error([&] { Trainer t(cfg_for(d / "r", {"model.init.hidden_dim=64"}), dist::world()); }),
              HasSubstr("meta.json: written for a different model (intermediate_size 48 vs 64)"));
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
  const auto direct = model::LlamaModel::from_tensors(t.model().config(), [&](const std::string& n) { return w.at(n); },
                                                      at::kFloat, at::kCPU);
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
}

}  // namespace
}  // namespace neftune::run
