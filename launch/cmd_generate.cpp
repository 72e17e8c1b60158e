// neftune generate --model DIR --prompt TEXT [...]
// neftune generate --model DIR --chat --prompt TEXT [--system TEXT] [--template NAME] [...]

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "config/errors.h"
#include "launch/commands.h"
#include "launch/inference_model.h"
#include "trainer/data/chat_encode.h"
#include "trainer/data/chat_template_load.h"
#include "trainer/data/examples.h"
#include "trainer/infer/generate.h"
#include "trainer/model/llama.h"
#include "trainer/tokenizer/utf8.h"

namespace neftune::launch {

Action add_generate_command(CLI::App& app, dist::World& world) {
  struct Opts {
    std::string model, prompt, input, dtype = "fp32", system, chat_template = "auto";
    run::GenerateOptions gen;
    bool raw = false, json = false, chat = false;
    int threads = 0;
    std::string device = "auto";
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate a response with an HF-format model (KV cache)");
  cmd->add_option("--model", o->model, "HF-format model directory (e.g. output_dir/final)")->required();
  cmd->add_option("--prompt", o->prompt, "the instruction (with --raw the raw prompt, with --chat the user turn)")
      ->required();
  cmd->add_option("--input", o->input, "optional input/context for the instruction");
  cmd->add_option("--max-new-tokens", o->gen.max_new_tokens,
                  "tokens to generate at most (1.." + std::to_string(run::kMaxNewTokens) + ")")
      ->capture_default_str();
  cmd->add_option("--temperature", o->gen.temperature, ">= 0; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", o->gen.top_p, "nucleus sampling mass in (0, 1] (with temperature > 0)")
      ->capture_default_str();
  cmd->add_option("--repetition-penalty", o->gen.repetition_penalty,
                  "CTRL-style penalty > 0; 1 = off, the paper uses 1.2")
      ->capture_default_str();
  cmd->add_option("--seed", o->gen.seed, "sampling seed")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "fp32 | bf16")->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  cmd->add_option("--threads", o->threads, "intra-op threads; 0 = all cores; more than the cores is capped")
      ->capture_default_str();
  cmd->add_option("--device", o->device, kDeviceHelp)->capture_default_str();
  CLI::Option* raw =
      cmd->add_flag("--raw", o->raw, "use the prompt as is (BOS + prompt), without the instruction template");
  CLI::Option* chat = cmd->add_flag(
      "--chat", o->chat,
      "the prompt (+ \"\\n\\n\" + --input) is one user turn of a conversation rendered with the chat template and its "
      "assistant header; generation also stops at the template's end-of-turn token");
  chat->excludes(raw);
  cmd->add_option("--system", o->system, "with --chat: a system turn before the user turn");
  cmd->add_option(
         "--template", o->chat_template,
         "with --chat: auto (the model directory's tokenizer_config.json chat_template) | " + data::chat_family_names())
      ->capture_default_str();
  cmd->add_flag(
      "--json", o->json,
      R"(print {"prompt_ids": [...], "output_ids": [...], "text": "..."}; bytes that are not UTF-8 become U+FFFD in "text")");
  return [o, &world]() {
    if (world.rank != 0) return kExitOk;  // generation is a single-process job
    // Every option is checked before the model is loaded.
    run::check_generate_options(o->gen);
    std::optional<data::ChatTemplate> chat_template;
    if (o->chat) chat_template = data::resolve_chat_template(o->chat_template, o->model, "--template");
    const InferenceModel im = load_inference_model(o->model, o->dtype, o->device, o->threads);
    const model::LlamaModel& m = im.model;
    const auto& tok = im.tok;
    std::vector<int32_t> prompt, stop_ids = {tok->eos_id()};
    if (chat_template) {
      const data::ChatTemplate& t = *chat_template;
      data::Conversation c;
      if (!o->system.empty()) c.messages.push_back({"system", o->system});
      c.messages.push_back({"user", o->input.empty() ? o->prompt : o->prompt + "\n\n" + o->input});
      c.add_generation_prompt = true;
      prompt = data::encode_chat(*tok, t, data::render_chat(t, c, "--prompt")).ids;
      stop_ids = tok->stop_ids();
      if (const auto eot = data::special_id(*tok, t, t.end_of_turn());
          eot && std::find(stop_ids.begin(), stop_ids.end(), *eot) == stop_ids.end())
        stop_ids.push_back(*eot);
    } else {
      prompt = o->raw ? tok->encode(o->prompt, true) : data::prompt_ids(*tok, o->prompt, o->input);
    }
    std::vector<int32_t> out = run::generate(m, prompt, o->gen, stop_ids);
    std::vector<int32_t> text_ids = out;
    if (!text_ids.empty() && std::find(stop_ids.begin(), stop_ids.end(), text_ids.back()) != stop_ids.end())
      text_ids.pop_back();
    const std::string text = tok->decode(text_ids);
    if (o->json) {
      // A byte tokenizer (or sentencepiece's byte fallback) can stop inside a character; JSON holds UTF-8.
      std::cout << nlohmann::json{{"prompt_ids", prompt}, {"output_ids", out}, {"text", tok::utf8::lossy(text)}}.dump()
                << '\n';
    } else {
      std::cout << text << '\n';
    }
    return kExitOk;
  };
}

}  // namespace neftune::launch
