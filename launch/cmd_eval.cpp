// neftune eval --model DIR [--data FILE] [...]

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "config/config.h"
#include "launch/commands.h"
#include "launch/inference_model.h"
#include "trainer/data/builtin_tasks.h"
#include "trainer/data/chat_template_load.h"
#include "trainer/data/examples.h"
#include "trainer/infer/model_eval.h"
#include "trainer/model/llama.h"

namespace neftune::launch {

Action add_eval_command(CLI::App& app, dist::World& world) {
  struct Opts {
    std::string model, data, format = "auto", chat_template = "auto", dtype = "fp32";
    int64_t max_samples = 200, max_seq_len = 512;
    run::EvalLossOptions loss;
    bool generate = false, json = false;
    run::GenerateOptions gen;
    int threads = 0;
    std::string device = "auto";
  };
  auto o = std::make_shared<Opts>();
  o->gen.max_new_tokens = 64;
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Held-out loss of an HF-format model; on the built-in tasks also exact-match accuracy and response length");
  cmd->add_option("--model", o->model, "HF-format model directory (e.g. output_dir/final)")->required();
  cmd->add_option("--data", o->data,
                  "Alpaca/Dolly/ShareGPT/messages JSON or JSONL; default: the built-in held-out split");
  cmd->add_option("--format", o->format, "alpaca | dolly | sharegpt | messages | auto")
      ->check(CLI::IsMember({"alpaca", "dolly", "sharegpt", "messages", "auto"}))
      ->capture_default_str();
  cmd->add_option("--chat-template", o->chat_template,
                  "for conversations (or instruction records as one-turn chats): auto (the model directory's) | " +
                      data::chat_family_names())
      ->capture_default_str();
  cmd->add_option("--max-samples", o->max_samples, "evaluate at most this many records (0 = all)")
      ->capture_default_str();
  cmd->add_option("--max-seq-len", o->max_seq_len, "truncate longer samples (prompt first)")->capture_default_str();
  cmd->add_option("--batch-size", o->loss.batch_size, "samples per forward")->capture_default_str();
  cmd->add_flag("--packing", o->loss.packing,
                "lay each batch's samples end to end in one row (no padding; the same loss up to rounding)");
  cmd->add_option("--loss-chunk-tokens", o->loss.loss_chunk_tokens,
                  "target positions per LM-head chunk (as train.loss_chunk_tokens); 0 = all at once")
      ->capture_default_str();
  cmd->add_flag("--generate", o->generate, "also generate answers (always on for the built-in split)");
  cmd->add_option("--max-new-tokens", o->gen.max_new_tokens,
                  "generation length limit (1.." + std::to_string(run::kMaxNewTokens) + ")")
      ->capture_default_str();
  cmd->add_option("--repetition-penalty", o->gen.repetition_penalty, "for generated answers; > 0, 1 = off")
      ->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "fp32 | bf16")->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  cmd->add_option("--threads", o->threads, "intra-op threads; 0 = all cores; more than the cores is capped")
      ->capture_default_str();
  cmd->add_option("--device", o->device, kDeviceHelp)->capture_default_str();
  cmd->add_flag("--json", o->json, "print the report as JSON");
  return [o, &world]() {
    if (world.rank != 0) return kExitOk;
    // Every option is checked before the model is loaded.
    if (o->loss.batch_size < 1 || o->max_seq_len < 8 || o->max_samples < 0 || o->loss.loss_chunk_tokens < 0) {
      throw UserError(
          "eval: --batch-size >= 1, --max-seq-len >= 8, --max-samples >= 0 and --loss-chunk-tokens >= 0 are "
          "required");
    }
    if (o->data.empty() && o->max_samples > config::kMaxBuiltinSamples) {
      throw UserError("eval: --max-samples: the built-in held-out split makes at most " +
                      std::to_string(config::kMaxBuiltinSamples) + " samples (got " + std::to_string(o->max_samples) +
                      ")");
    }
    run::check_generate_options(o->gen);
    if (o->chat_template != "auto" && !data::chat_family_from_string(o->chat_template))
      throw UserError("eval: --chat-template " + o->chat_template + ": choose auto | " + data::chat_family_names());
    const InferenceModel im = load_inference_model(o->model, o->dtype, o->device, o->threads);
    const model::LlamaModel& m = im.model;
    const auto& tok = im.tok;
    const bool builtin = o->data.empty();
    std::vector<data::Record> records;
    if (builtin) {
      records = data::make_builtin_tasks(o->max_samples > 0 ? o->max_samples : 200, data::Split::held_out);
    } else {
      config::DataFormat fmt{};
      config::from_string(o->format == "auto" ? "auto" : o->format, fmt);
      records = data::read_records(o->data, fmt, config::OnMalformed::error);
      if (o->max_samples > 0 && static_cast<int64_t>(records.size()) > o->max_samples)
        records.resize(static_cast<size_t>(o->max_samples));
    }
    const int64_t max_len = std::min(o->max_seq_len, m.config().max_position_embeddings);
    data::TokenizeOptions opts;
    opts.max_seq_len = max_len;
    opts.too_long = config::TooLong::truncate;
    const bool conversations =
        std::any_of(records.begin(), records.end(), [](const data::Record& r) { return r.is_conversation(); });
    // As in training: auto gives instruction records the Alpaca prompt, conversations the model's template.
    if (conversations || o->chat_template != "auto")
      opts.chat_template = data::resolve_chat_template(o->chat_template, o->model, "--chat-template");
    if (conversations && o->generate) {
      throw UserError("eval: --generate answers instruction records; " + o->data +
                      " holds conversations, which are scored by loss only (drop --generate)");
    }
    const auto examples = data::make_examples(records, *tok, opts, builtin ? "built-in held-out data" : o->data);
    run::EvalReport report;
    run::eval_loss(m, examples, tok->pad_id(), o->loss, report);
    if (builtin || o->generate) run::eval_generation(m, *tok, records, o->gen, true, builtin, report);

    if (o->json) {
      nlohmann::json j = {{"eval_loss", report.loss},
                          {"examples", report.examples},
                          {"target_tokens", report.target_tokens},
                          {"generated", report.generated},
                          {"mean_response_tokens", report.mean_response_tokens},
                          {"mean_response_chars", report.mean_response_chars}};
      if (report.exact_match) j["exact_match"] = *report.exact_match;
      for (const auto& [task, ct] : report.per_task)
        j["per_task"][task] = {{"correct", ct.first}, {"total", ct.second}};
      std::cout << j.dump() << '\n';
    } else {
      std::printf("eval_loss %.4f over %lld examples (%lld response tokens)\n", report.loss,
                  static_cast<long long>(report.examples), static_cast<long long>(report.target_tokens));
      if (report.generated > 0) {
        std::printf("generated %lld answers: mean length %.1f tokens / %.1f chars\n",
                    static_cast<long long>(report.generated), report.mean_response_tokens, report.mean_response_chars);
      }
      if (report.exact_match) std::printf("exact match %.1f%%\n", 100.0 * *report.exact_match);
      for (const auto& [task, ct] : report.per_task) {
        std::printf("  %-10s %lld/%lld\n", task.c_str(), static_cast<long long>(ct.first),
                    static_cast<long long>(ct.second));
      }
    }
    return kExitOk;
  };
}

}  // namespace neftune::launch
