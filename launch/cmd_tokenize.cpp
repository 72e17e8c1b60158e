// neftune tokenize --model DIR [--special] [--json] TEXT
// neftune tokenize --model DIR --chat CONVERSATION.json [--template NAME] [--train-on WHICH] [--json]
#include <algorithm>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/enums.h"
#include "config/errors.h"
#include "launch/commands.h"
#include "trainer/data/chat_encode.h"
#include "trainer/data/chat_template_load.h"
#include "trainer/data/conversations.h"
#include "trainer/io/file_read.h"
#include "trainer/io/json_error.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::launch {
namespace {

std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// {"messages": [...]} (or ShareGPT "conversations"), with an optional "add_generation_prompt".
data::Conversation read_conversation(const std::string& path) {
  const std::string text = io::read_input(path, io::Input::data, "conversation file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw UserError(path + ": not valid JSON: " + io::json_error(e));
  }
  const auto format = data::conversation_format(j);
  if (!format) throw UserError(path + R"(: expected a JSON object {"messages": [{"role": ..., "content": ...}, ...]})");
  data::Conversation c;
  const std::string err = data::parse_conversation(j, *format, /*training=*/false, c.messages);
  if (!err.empty()) throw UserError(path + ": " + err);
  if (j.contains("add_generation_prompt")) {
    if (!j["add_generation_prompt"].is_boolean())
      throw UserError(path + ": add_generation_prompt is not true or false");
    c.add_generation_prompt = j["add_generation_prompt"].get<bool>();
  }
  return c;
}

void print_rows(const tok::Tokenizer& tok, const std::vector<int32_t>& ids, const std::vector<uint8_t>* mask) {
  for (size_t k = 0; k < ids.size(); ++k) {
    const int32_t id = ids[k];
    const std::string text = tok.decode({id});
    if (mask) std::cout << ((*mask)[k] ? "*" : " ") << "\t";
    std::cout << id << "\t" << quoted(tok.piece(id));
    if (text != tok.piece(id)) std::cout << "\t" << quoted(text);
    std::cout << "\n";
  }
}

}  // namespace

Action add_tokenize_command(CLI::App& app, dist::World& world) {
  struct Opts {
    std::string model, text, chat, chat_template = "auto", train_on = "assistant";
    bool special = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Print the ids of a text under a model directory's tokenizer (tokenizer.model, tokenizer.json or "
      "neftune_tokenizer.json, picked as tokenizer.kind auto picks it), or of a conversation rendered with a "
      "chat template, with the tokens that have a loss in training");
  cmd->add_option("--model", o->model,
                  "a directory holding the tokenizer files (config.json not needed), or one tokenizer file")
      ->required();
  cmd->add_flag("--special", o->special,
                "add the tokenizer's special tokens: BOS for sentencepiece, tokenizer.json's post-processor");
  cmd->add_flag(
      "--json", o->json,
      R"(print {"ids": [...]}; with --chat {"text": ..., "ids": [...], "labels_mask": [...]} (1 = a target))");
  CLI::Option* chat = cmd->add_option(
      "--chat", o->chat,
      R"(a conversation file {"messages": [{"role": ..., "content": ...}], "add_generation_prompt": false} )"
      "to render with the chat template instead of TEXT");
  cmd->add_option(
         "--template", o->chat_template,
         "with --chat: auto (the directory's tokenizer_config.json chat_template) | " + data::chat_family_names())
      ->capture_default_str();
  cmd->add_option("--train-on", o->train_on,
                  "with --chat: the targets, as data.train_on: assistant | last_assistant | all")
      ->check(CLI::IsMember({"assistant", "last_assistant", "all"}))
      ->capture_default_str();
  CLI::Option* text = cmd->add_option("text", o->text, "the text to tokenize");
  chat->excludes(text);
  return [o, chat, text, &world]() {
    if (world.rank != 0) return kExitOk;  // a single-process job
    if (chat->count() == 0 && text->count() == 0) throw UserError("tokenize: give a TEXT to tokenize, or --chat FILE");
    const auto tok = tok::load_tokenizer_from_model_dir(o->model);
    if (chat->count() > 0) {
      const data::ChatTemplate t = data::resolve_chat_template(o->chat_template, o->model, "--template");
      const data::Conversation c = read_conversation(o->chat);
      config::TrainOn train_on{};
      config::from_string(o->train_on, train_on);
      const std::vector<data::ChatSegment> segs = data::select_targets(data::render_chat(t, c, o->chat), train_on);
      std::string text;
      for (const auto& s : segs) text += s.text;
      const data::EncodedChat e = data::encode_chat(*tok, t, segs);
      if (o->json) {
        std::cout << nlohmann::json{{"text", text}, {"ids", e.ids}, {"labels_mask", e.train}}.dump(
                         -1, ' ', false, nlohmann::json::error_handler_t::replace)
                  << '\n';
        return kExitOk;
      }
      std::cout << to_string(t.family) << " template, " << tok->kind() << " tokenizer: " << e.ids.size() << " tokens, "
                << std::count(e.train.begin(), e.train.end(), 1) << " with a loss (*)\n"
                << quoted(text) << "\n";
      print_rows(*tok, e.ids, &e.train);
      std::cout << std::flush;
      return kExitOk;
    }
    const std::vector<int32_t> ids = tok->encode(o->text, o->special);
    if (o->json) {
      std::cout << nlohmann::json{{"ids", ids}}.dump() << '\n';
      return kExitOk;
    }
    std::cout << tok->kind() << " tokenizer, vocab " << tok->vocab_size() << ": " << ids.size() << " tokens\n";
    print_rows(*tok, ids, nullptr);
    std::cout << std::flush;
    return kExitOk;
  };
}

}  // namespace neftune::launch
