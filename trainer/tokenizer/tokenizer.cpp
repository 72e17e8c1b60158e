#include "trainer/tokenizer/tokenizer.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "config/errors.h"
#include "trainer/io/file_read.h"
#include "trainer/io/file_write.h"
#include "trainer/tokenizer/hf_tokenizer.h"

namespace neftune::tok {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// One of the JSON files save() writes into a model or checkpoint directory.
void save_json(const std::string& dir, const std::string& name, const json& j) {
  io::write_file_atomic((fs::path(dir) / name).string(), j.dump(2) + "\n");
}

}  // namespace

std::vector<int32_t> ByteTokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() + 1);
  if (add_bos) ids.push_back(kBos);
  for (const unsigned char c : text) ids.push_back(c);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (const int32_t id : ids)
    if (id >= 0 && id < 256) out.push_back(static_cast<char>(id));
  return out;
}

std::string ByteTokenizer::piece(int32_t id) const {
  if (id == kBos) return "<bos>";
  if (id == kEos) return "<eos>";
  if (id == kPad) return "<pad>";
  if (id < 0 || id >= 256) return "";
  static const char* hex = "0123456789ABCDEF";
  if (id >= 0x20 && id < 0x7F) return std::string(1, static_cast<char>(id));
  return std::string("<0x") + hex[id >> 4] + hex[id & 15] + ">";
}

void ByteTokenizer::save(const std::string& dir) const {
  save_json(dir, "neftune_tokenizer.json",
            {{"kind", "byte"}, {"vocab_size", 259}, {"bos_id", kBos}, {"eos_id", kEos}, {"pad_id", kPad}});
  save_json(
      dir, "tokenizer_config.json",
      {{"tokenizer_class", "ByteTokenizer (neftune; see neftune_tokenizer.json)"}, {"model_max_length", 1 << 20}});
}

namespace {

// The functions of libneftune_sentencepiece.so (sp_shim.h), loaded once per process.
struct SpModule {
  void* (*load)(const char*, char*, size_t);
  void (*free)(void*);
  long (*encode)(void*, const char*, size_t, int*, size_t);
  long (*decode)(void*, const int*, size_t, char*, size_t);
  void (*info)(void*, int*, int*, int*, int*, int*);
  long (*piece)(void*, int, char*, size_t);
};

std::string module_path() {
  if (const char* env = std::getenv("NEFTUNE_SP_MODULE")) return env;
  const char* name = "libneftune_sentencepiece.so";
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& dir : {exe.parent_path() / ".." / "lib", exe.parent_path()}) {
      if (fs::exists(dir / name)) return (dir / name).string();
    }
  }
#ifdef NEFTUNE_SP_MODULE_DIRS
  for (const char* dir : {NEFTUNE_SP_MODULE_DIRS}) {
    if (fs::exists(fs::path(dir) / name)) return (fs::path(dir) / name).string();
  }
#endif
  return name;  // the dynamic linker's search path
}

const SpModule& sp_module() {
  static const SpModule kModule = [] {
    const std::string path = module_path();
#if defined(__SANITIZE_ADDRESS__)
    const int flags = RTLD_NOW | RTLD_LOCAL;  // sanitizers refuse RTLD_DEEPBIND
#else
    const int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
    void* lib = dlopen(path.c_str(), flags);
    if (!lib) {
      throw std::runtime_error(std::string("cannot load the sentencepiece module: ") + dlerror() +
                               " (set NEFTUNE_SP_MODULE to libneftune_sentencepiece.so)");
    }
    auto sym = [&](const char* name) {
      void* f = dlsym(lib, name);
      if (!f) throw std::runtime_error(path + ": missing symbol " + name);
      return f;
    };
    SpModule m{};
    m.load = reinterpret_cast<decltype(m.load)>(sym("nsp_load"));
    m.free = reinterpret_cast<decltype(m.free)>(sym("nsp_free"));
    m.encode = reinterpret_cast<decltype(m.encode)>(sym("nsp_encode"));
    m.decode = reinterpret_cast<decltype(m.decode)>(sym("nsp_decode"));
    m.info = reinterpret_cast<decltype(m.info)>(sym("nsp_info"));
    m.piece = reinterpret_cast<decltype(m.piece)>(sym("nsp_piece"));
    return m;
  }();
  return kModule;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) : path_(path), m_(sp_module()) {
    if (!fs::exists(path)) throw UserError(path + ": sentencepiece tokenizer.model not found (set tokenizer.path)");
    char err[512] = {0};
    {
      // sentencepiece opens the file this process already opened and checked (a regular file in the limit).
      const io::InputFile in(path, io::Input::tokenizer, "sentencepiece tokenizer.model");
      const std::string fd_path = "/proc/self/fd/" + std::to_string(in.fd());
      handle_ = m_.load(fd_path.c_str(), err, sizeof err);
    }
    if (!handle_) throw UserError(path + ": cannot load sentencepiece model: " + err);
    m_.info(handle_, &vocab_, &bos_, &eos_, &pad_, &unk_);
    if (bos_ < 0 || eos_ < 0) throw UserError(path + ": the tokenizer has no BOS/EOS ids");
  }
  ~SentencePieceTokenizer() override { m_.free(handle_); }
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::string kind() const override { return "sentencepiece"; }
  std::vector<int32_t> encode(const std::string& text, bool add_bos) const override {
    std::vector<int> ids(text.size() + 8);
    long n = m_.encode(handle_, text.data(), text.size(), ids.data(), ids.size());
    if (n > static_cast<long>(ids.size())) {
      ids.resize(static_cast<size_t>(n));
      n = m_.encode(handle_, text.data(), text.size(), ids.data(), ids.size());
    }
    if (n < 0) throw std::runtime_error("sentencepiece encode failed");
    std::vector<int32_t> out;
    out.reserve(static_cast<size_t>(n) + 1);
    if (add_bos) out.push_back(bos_);
    out.insert(out.end(), ids.begin(), ids.begin() + n);
    return out;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::vector<int> in;
    for (const int32_t id : ids)
      if (id >= 0 && id < vocab_ && id != bos_ && id != eos_) in.push_back(id);
    std::string text(in.size() * 8 + 16, '\0');
    long n = m_.decode(handle_, in.data(), in.size(), text.data(), text.size());
    if (n > static_cast<long>(text.size())) {
      text.resize(static_cast<size_t>(n));
      n = m_.decode(handle_, in.data(), in.size(), text.data(), text.size());
    }
    if (n < 0) throw std::runtime_error("sentencepiece decode failed");
    text.resize(static_cast<size_t>(n));
    return text;
  }
  std::string piece(int32_t id) const override { return id < 0 || id >= vocab_ ? "" : piece_text(id); }
  int64_t vocab_size() const override { return vocab_; }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  int32_t pad_id() const override { return pad_ >= 0 ? pad_ : eos_; }
  void save(const std::string& dir) const override {
    const fs::path dst = fs::path(dir) / "tokenizer.model";
    if (fs::absolute(path_) != fs::absolute(dst)) io::copy_file_atomic(path_, dst.string());
    save_json(dir, "tokenizer_config.json",
              {{"tokenizer_class", "LlamaTokenizer"},
               {"bos_token", piece_text(bos_)},
               {"eos_token", piece_text(eos_)},
               {"unk_token", piece_text(unk_)},
               {"add_bos_token", true},
               {"add_eos_token", false},
               {"legacy", true},
               {"model_max_length", 1 << 20}});
    save_json(dir, "special_tokens_map.json",
              {{"bos_token", piece_text(bos_)}, {"eos_token", piece_text(eos_)}, {"unk_token", piece_text(unk_)}});
  }

 private:
  std::string piece_text(int id) const {
    if (id < 0) return "";
    char buf[256];
    const long n = m_.piece(handle_, id, buf, sizeof buf);
    return n < 0 ? "" : std::string(buf, static_cast<size_t>(std::min<long>(n, sizeof buf)));
  }

  std::string path_;
  const SpModule& m_;
  void* handle_ = nullptr;
  int vocab_ = 0, bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1;
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_path) {
  return std::make_unique<SentencePieceTokenizer>(model_path);
}

std::unique_ptr<Tokenizer> make_hf_tokenizer(const std::string& json_path) {
  if (!fs::exists(json_path)) throw UserError(json_path + ": tokenizer.json not found (set tokenizer.path)");
  return std::make_unique<HfTokenizer>(json_path);
}

std::optional<TokenizerFile> find_tokenizer_file(const std::string& dir) {
  using config::TokenizerKind;
  for (const auto& [name, kind] :
       {std::pair{"tokenizer.model", TokenizerKind::sentencepiece}, std::pair{"tokenizer.json", TokenizerKind::hf},
        std::pair{"neftune_tokenizer.json", TokenizerKind::byte}}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p)) return TokenizerFile{kind, p.string()};
  }
  return std::nullopt;
}

namespace {

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerFile& f) {
  switch (f.kind) {
    case config::TokenizerKind::sentencepiece:
      return make_sentencepiece_tokenizer(f.path);
    case config::TokenizerKind::hf:
      return make_hf_tokenizer(f.path);
    default:
      return std::make_unique<ByteTokenizer>();
  }
}

// A tokenizer file by its name: tokenizer.json-like (*.json) is hf, neftune_tokenizer.json byte,
// anything else (tokenizer.model) sentencepiece.
TokenizerFile file_by_name(const std::string& path) {
  const fs::path p(path);
  if (p.filename() == "neftune_tokenizer.json") return {config::TokenizerKind::byte, path};
  for (const char* other : {"tokenizer_config.json", "special_tokens_map.json", "config.json"}) {
    if (p.filename() == other) {
      throw UserError(path + ": is the " + other + " beside a tokenizer, not the tokenizer: name tokenizer.json " +
                      "(or tokenizer.model), or the directory holding it");
    }
  }
  if (p.extension() == ".json") return {config::TokenizerKind::hf, path};
  return {config::TokenizerKind::sentencepiece, path};
}

std::string no_tokenizer_in(const std::string& dir, const std::string& hint) {
  return dir + ": no tokenizer.model, tokenizer.json or neftune_tokenizer.json (" + hint + ")";
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const config::TokenizerConfig& cfg,
                                          const std::optional<std::string>& model_dir) {
  using config::TokenizerKind;
  // The explicit kinds: tokenizer.path (a file, or a directory holding the kind's file), else model.path.
  auto explicit_file = [&](const char* name) {
    if (cfg.path) return fs::is_directory(*cfg.path) ? (fs::path(*cfg.path) / name).string() : *cfg.path;
    if (!model_dir) {
      throw UserError(std::string("tokenizer.kind ") + std::string(config::to_string(cfg.kind)) +
                      ": set tokenizer.path or model.path (with a " + name + " in it)");
    }
    return (fs::path(*model_dir) / name).string();
  };
  switch (cfg.kind) {
    case TokenizerKind::byte:
      return std::make_unique<ByteTokenizer>();
    case TokenizerKind::sentencepiece:
      return make_sentencepiece_tokenizer(explicit_file("tokenizer.model"));
    case TokenizerKind::hf:
      return make_hf_tokenizer(explicit_file("tokenizer.json"));
    case TokenizerKind::auto_detect:
      break;
  }
  const std::optional<std::string> where = cfg.path ? cfg.path : model_dir;
  if (!where) return std::make_unique<ByteTokenizer>();
  TokenizerFile f;
  if (fs::is_directory(*where)) {
    const auto found = find_tokenizer_file(*where);
    if (!found) {
      throw UserError(no_tokenizer_in(*where, std::string("tokenizer.kind auto: set tokenizer.kind and ") +
                                                  (cfg.path ? "tokenizer.path" : "model.path or tokenizer.path")));
    }
    f = *found;
  } else {
    if (!fs::exists(*where)) throw UserError(*where + ": not found (tokenizer.path)");
    f = file_by_name(*where);
  }
  spdlog::info("[tokenizer] auto: {} ({})", config::to_string(f.kind), f.path);
  return make_tokenizer(f);
}

std::unique_ptr<Tokenizer> load_tokenizer_from_model_dir(const std::string& dir) {
  if (fs::is_regular_file(dir)) return make_tokenizer(file_by_name(dir));
  const auto found = find_tokenizer_file(dir);
  if (!found) throw UserError(no_tokenizer_in(dir, "copy the tokenizer files of the base model into it"));
  return make_tokenizer(*found);
}

}  // namespace neftune::tok
