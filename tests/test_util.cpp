#include "tests/test_util.h"

#include <ATen/CPUGeneratorImpl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.h"

namespace neftune::test {
namespace fs = std::filesystem;

std::optional<std::string> shared_dir() {
  if (const char* env = std::getenv("NEFTUNE_SHARED"); env && fs::is_directory(env)) return std::string(env);
  for (const char* guess : {"../shared", "../../shared", "../../../shared"})
    if (fs::is_directory(fs::path(guess) / "fixtures")) return fs::absolute(guess).string();
  return std::nullopt;
}

bool references_required() {
  const char* v = std::getenv("NEFTUNE_REQUIRE_REFERENCES");
  return v && std::string(v) == "1";
}

std::optional<std::string> fixture(const std::string& relative) {
  const auto dir = shared_dir();
  if (!dir) return std::nullopt;
  const fs::path p = fs::path(*dir) / "fixtures" / relative;
  if (!fs::exists(p)) return std::nullopt;
  return p.string();
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "neftune-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string neftune_bin() {
  if (const char* env = std::getenv("NEFTUNE_BIN")) return env;
  return "build/bin/neftune";
}

std::string mpirun(int np) {
  std::string cmd = "mpirun --oversubscribe --bind-to none";
  if (getuid() == 0) cmd += " --allow-run-as-root";
  return cmd + " -np " + std::to_string(np) + " ";
}

config::TrainConfig small_train_config(const std::string& output_dir, const std::vector<std::string>& extra) {
  std::vector<std::string> sets = {"output_dir=" + output_dir,
                                   "model.init.dim=32",
                                   "model.init.n_layers=2",
                                   "model.init.n_heads=4",
                                   "model.init.n_kv_heads=2",
                                   "model.init.hidden_dim=48",
                                   "model.init.tie_embeddings=false",
                                   "data.builtin_train_size=40",
                                   "data.builtin_eval_size=0",
                                   "data.max_seq_len=200",
                                   "train.micro_batch_size=2",
                                   "train.lr=2e-3",
                                   "train.weight_decay=0.01",
                                   "neftune.alpha=5",
                                   "logging.level=warn",
                                   "logging.progress=off"};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return config::parse_config("", "test", sets);
}

void write_file(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

model::LlamaConfig small_llama(int64_t vocab, bool tied) {
  config::ModelInit init;
  init.dim = 32;
  init.n_layers = 2;
  init.n_heads = 4;
  init.n_kv_heads = 2;
  init.hidden_dim = 48;
  init.max_seq_len = 64;
  init.tie_embeddings = tied;
  return model::LlamaConfig::from_init(init, vocab, 256, 257);
}

std::vector<data::Example> random_examples(uint64_t seed, const std::vector<int64_t>& lengths) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  std::vector<data::Example> ex;
  for (const int64_t len : lengths) {
    data::Example e;
    const at::Tensor ids = at::randint(0, 256, {len}, gen, at::kLong);
    for (int64_t t = 0; t < len; ++t) e.ids.push_back(static_cast<int32_t>(ids[t].item<int64_t>()));
    e.set_prompt_length(len / 3);
    ex.push_back(e);
  }
  return ex;
}

std::vector<data::Batch> two_padded_micro_batches(uint64_t seed) {
  const std::vector<data::Example> ex = random_examples(seed, {40, 23, 31, 12});
  return {data::collate(ex, {{0, 0}, {1, 0}}, 258), data::collate(ex, {{2, 0}, {3, 0}}, 258)};
}

}  // namespace neftune::test
