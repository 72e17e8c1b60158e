#include "trainer/tokenizer/tokenizer_json_reader.h"

#include <cstdint>
#include <fstream>
#include <vector>

#include "config/errors.h"
#include "trainer/io/file_read.h"
#include "trainer/io/json_error.h"

namespace neftune::tok {
namespace {

using json = nlohmann::json;

// Builds the tree for everything except model.vocab and model.merges, which go to the sink.
class Reader final : public nlohmann::json_sax<json> {
 public:
  Reader(const std::string& path, TokenizerJsonSink& sink) : path_(path), sink_(sink) {}
  json root;

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override {
    if (mode() != Mode::vocab) return value(json(v));
    sink_.vocab_entry(key_, v);
    return true;
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode() != Mode::vocab) return value(json(v));
    sink_.vocab_entry(key_, v > INT64_MAX ? -1 : static_cast<int64_t>(v));
    return true;
  }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
  bool string(string_t& v) override {
    if (mode() == Mode::merges) {
      const size_t space = v.find(' ');
      if (space == std::string::npos || v.find(' ', space + 1) != std::string::npos)
        fail("model.merges[" + std::to_string(rank_) + "]: expected \"left right\"");
      sink_.merge(std::string_view(v).substr(0, space), std::string_view(v).substr(space + 1), rank_++);
      return true;
    }
    if (mode() == Mode::merge_pair) {
      if (pair_size_ == 2) fail("model.merges[" + std::to_string(rank_) + "]: expected [\"left\", \"right\"]");
      pair_[pair_size_++] = v;
      return true;
    }
    return value(json(std::move(v)));
  }
  bool binary(binary_t&) override { return fail("binary values are not JSON"); }
  bool start_object(std::size_t) override {
    if (stack_.size() == 2 && stack_[1].name == "model" && key_ == "vocab" && mode() == Mode::dom) {
      stack_.push_back(Frame{nullptr, Mode::vocab, "vocab"});
      return true;
    }
    return open(json::object());
  }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool end_object() override {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (stack_.size() == 2 && stack_[1].name == "model" && key_ == "merges" && mode() == Mode::dom) {
      stack_.push_back(Frame{nullptr, Mode::merges, "merges"});
      return true;
    }
    if (mode() == Mode::merges) {
      stack_.push_back(Frame{nullptr, Mode::merge_pair, ""});
      pair_size_ = 0;
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (mode() == Mode::merge_pair) {
      if (pair_size_ != 2) fail("model.merges[" + std::to_string(rank_) + "]: expected [\"left\", \"right\"]");
      sink_.merge(pair_[0], pair_[1], rank_++);
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return fail("invalid JSON: " + io::json_error(e));
  }

 private:
  enum class Mode { dom, vocab, merges, merge_pair };
  struct Frame {
    json* container;  // the object or array being filled (dom)
    Mode mode;
    std::string name;  // its key in the parent object
  };

  Mode mode() const { return stack_.empty() ? Mode::dom : stack_.back().mode; }
  [[noreturn]] bool fail(const std::string& what) { throw UserError(path_ + ": " + what); }

  json* insert(json&& v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    json& c = *stack_.back().container;
    if (c.is_object()) return &(c[key_] = std::move(v));
    c.push_back(std::move(v));
    return &c.back();
  }
  bool value(json&& v) {
    if (mode() == Mode::vocab) fail("model.vocab: token '" + key_ + "' has no valid id");
    if (mode() != Mode::dom)
      fail("model.merges[" + std::to_string(rank_) + "]: expected \"left right\" or [\"left\", \"right\"]");
    insert(std::move(v));
    return true;
  }
  bool open(json&& empty) {
    if (mode() != Mode::dom) return value(std::move(empty));
    const bool in_object = !stack_.empty() && stack_.back().container->is_object();
    std::string name = in_object ? key_ : "";
    json* c = insert(std::move(empty));
    stack_.push_back(Frame{c, Mode::dom, std::move(name)});
    return true;
  }

  const std::string& path_;
  TokenizerJsonSink& sink_;
  std::vector<Frame> stack_;
  std::string key_;
  std::string pair_[2];
  size_t pair_size_ = 0, rank_ = 0;
};

}  // namespace

json read_tokenizer_json(const std::string& path, TokenizerJsonSink& sink) {
  const std::string text = io::read_input(path, io::Input::tokenizer, "tokenizer");
  Reader reader(path, sink);
  json::sax_parse(text, &reader);
  return std::move(reader.root);
}

}  // namespace neftune::tok
