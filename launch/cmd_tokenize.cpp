// neftune tokenize --model DIR [--special] [--json] TEXT
#include <iostream>
#include <nlohmann/json.hpp>

#include "config/errors.h"
#include "launch/commands.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::launch {
namespace {

std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Action add_tokenize_command(CLI::App& app, dist::World& world) {
  struct Opts {
    std::string model, text;
    bool special = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Print the ids of a text under a model directory's tokenizer (tokenizer.model, tokenizer.json or "
      "neftune_tokenizer.json, picked as tokenizer.kind auto picks it)");
  cmd->add_option("--model", o->model,
                  "a directory holding the tokenizer files (config.json not needed), or one tokenizer file")
      ->required();
  cmd->add_flag("--special", o->special,
                "add the tokenizer's special tokens: BOS for sentencepiece, tokenizer.json's post-processor");
  cmd->add_flag("--json", o->json, R"(print {"ids": [...]})");
  cmd->add_option("text", o->text, "the text to tokenize")->required();
  return [o, &world]() {
    if (world.rank != 0) return kExitOk;  // a single-process job
    const auto tok = tok::load_tokenizer_from_model_dir(o->model);
    const std::vector<int32_t> ids = tok->encode(o->text, o->special);
    if (o->json) {
      std::cout << nlohmann::json{{"ids", ids}}.dump() << std::endl;
      return kExitOk;
    }
    std::cout << tok->kind() << " tokenizer, vocab " << tok->vocab_size() << ": " << ids.size() << " tokens\n";
    for (const int32_t id : ids) {
      const std::string text = tok->decode({id});
      std::cout << id << "\t" << quoted(tok->piece(id));
      if (text != tok->piece(id)) std::cout << "\t" << quoted(text);
      std::cout << "\n";
    }
    std::cout << std::flush;
    return kExitOk;
  };
}

}  // namespace neftune::launch
