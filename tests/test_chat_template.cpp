// Chat templates: the text each built-in family renders equals what the model's own Jinja template
// renders, character for character, and tokenizes to the reference ids. References: the Llama 3 and Qwen3 renderings in
// ../shared/fixtures/modern/tokenizers/*/reference.json (HF's Jinja implementation, from the files'
// own chat_template), and the targets of @huggingface/jinja's template tests for the Llama 2, Mistral
// and ChatML templates, copied below. Loss segments: exactly the assistant turns and their end of turn.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/errors.h"
#include "tests/test_util.h"
#include "trainer/data/chat_template.h"
#include "trainer/tokenizer/tokenizer.h"

namespace neftune::data {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

Conversation from_json(const json& j) {
  Conversation c;
  for (const auto& m : j.at("messages")) c.messages.push_back({m.at("role"), m.at("content")});
  c.add_generation_prompt = j.value("add_generation_prompt", false);
  return c;
}

std::string trained(const std::vector<ChatSegment>& segs) {
  std::string s;
  for (const auto& g : segs)
    if (g.train) s += g.text + "|";
  return s;
}

// The @huggingface/jinja test conversation.
Conversation example_chat(bool with_system) {
  Conversation c;
  if (with_system)
    c.messages.push_back({"system", "You are a friendly chatbot who always responds in the style of a pirate"});
  c.messages.push_back({"user", "Hello, how are you?"});
  c.messages.push_back({"assistant", "I'm doing great. How can I help you today?"});
  c.messages.push_back({"user", "I'd like to show off how chat templating works!"});
  return c;
}

class ChatTemplateFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatTemplateFixture, RendersWhatTheModelsOwnTemplateRenders) {
  NEFTUNE_REQUIRE_FIXTURE(dir, "modern/tokenizers/" + GetParam());
  const json cfg = test::read_json(dir + "/tokenizer_config.json");
  const auto token = [&](const char* k) {
    return cfg.contains(k) && cfg[k].is_string() ? cfg[k].get<std::string>() : "";
  };
  const ChatTemplate t = recognise_chat_template(cfg.at("chat_template"), token("bos_token"), token("eos_token"), dir);
  EXPECT_STREQ(to_string(t.family), GetParam() == "llama3" ? "llama3" : "qwen3");
  const auto tok = tok::load_tokenizer_from_model_dir(dir);  // the directory's tokenizer.json
  int n = 0;
  const json reference = test::read_json(dir + "/reference.json");
  for (const auto& chat : reference.at("chat")) {
    const Conversation c = from_json(chat);
    const std::string text = render_chat_text(t, c, "chat " + std::to_string(n));
    EXPECT_EQ(text, chat.at("text").get<std::string>()) << chat.dump();
    // And the ids HF's tokenizer makes of that text (special tokens written in it become their ids).
    EXPECT_EQ(tok->encode(text, false), chat.at("ids").get<std::vector<int32_t>>()) << chat.dump();
    ++n;
  }
  EXPECT_EQ(n, 6);
}

INSTANTIATE_TEST_SUITE_P(Modern, ChatTemplateFixture, ::testing::Values("llama3", "qwen3"));

TEST(ChatTemplate, LossIsOnAssistantContentAndItsEndOfTurnOnly) {
  Conversation c = example_chat(true);
  c.messages.push_back({"assistant", "  Arr!\n"});
  EXPECT_EQ(trained(render_chat(builtin_chat_template(ChatFamily::llama3), c, "t")),
            "I'm doing great. How can I help you today?|<|eot_id|>|Arr!|<|eot_id|>|");
  // Qwen3: the empty think block of the last assistant turn (after the last user turn) is trained too.
  EXPECT_EQ(trained(render_chat(builtin_chat_template(ChatFamily::qwen3), c, "t")),
            "I'm doing great. How can I help you today?|<|im_end|>|<think>\n\n</think>\n\n  Arr!\n|<|im_end|>|");
  EXPECT_EQ(trained(render_chat(builtin_chat_template(ChatFamily::llama2), c, "t")),
            "I'm doing great. How can I help you today? |</s>|Arr! |</s>|");
}

// Targets from @huggingface/jinja's tests (tests/templates.test.js), rendered there from the real
// Jinja templates of these models.
TEST(ChatTemplate, Llama2MistralAndChatmlMatchTheJinjaRenderings) {
  const ChatTemplate llama2 = recognise_chat_template(
      "{% if messages[0]['role'] == 'system' %}...'<<SYS>>\\n'...'[INST] '...", "<s>", "</s>", "llama2");
  EXPECT_EQ(render_chat_text(llama2, example_chat(true), "t"),
            "<s>[INST] <<SYS>>\nYou are a friendly chatbot who always responds in the style of a pirate\n<</SYS>>\n\n"
            "Hello, how are you? [/INST] I'm doing great. How can I help you today? </s><s>[INST] I'd like to show off "
            "how chat templating works! [/INST]");
  const std::string mixtral =
      "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] "
      "+ "
      "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor "
      "%}";
  EXPECT_EQ(
      render_chat_text(recognise_chat_template(mixtral, "<s>", "</s>", "m"), example_chat(false), "t"),
      "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s>[INST] I'd like to show "
      "off how chat templating works! [/INST]");
  const std::string mistral01 =
      "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] "
      "+ "
      "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% endif %}{% "
      "endfor %}";
  EXPECT_EQ(
      render_chat_text(recognise_chat_template(mistral01, "<s>", "</s>", "m"), example_chat(false), "t"),
      "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> [INST] I'd like to show "
      "off how chat templating works! [/INST]");
  const std::string chatml =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
      "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const ChatTemplate plain = recognise_chat_template(chatml, "", "<|im_end|>", "c");
  EXPECT_EQ(plain.default_system, "");
  EXPECT_EQ(
      render_chat_text(plain, example_chat(false), "t"),
      "<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you "
      "today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n");
  // Qwen2.5 writes its default system turn into the template.
  const ChatTemplate qwen25 = recognise_chat_template(
      "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
      "assistant.<|im_end|>\\n' }}{%- endif %}...'<|im_start|>' + message.role",
      "", "<|im_end|>", "q");
  EXPECT_EQ(qwen25.default_system, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
}

TEST(ChatTemplate, Llama31OpensWithTheKnowledgeCutoffAndDate) {
  Conversation c;
  c.messages = {{"user", "Hi"}};
  c.add_generation_prompt = true;
  EXPECT_EQ(render_chat_text(builtin_chat_template(ChatFamily::llama3), c, "t"),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, WhatATemplateCannotRenderIsAnErrorNamingTheTurn) {
  const auto error = [](ChatFamily f, std::vector<ChatMessage> m) {
    try {
      render_chat(builtin_chat_template(f), {std::move(m), false}, "chat.jsonl record 3");
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_THAT(error(ChatFamily::llama3, {{"user", "a"}, {"tool", "b"}}),
              HasSubstr("chat.jsonl record 3: turn 2: role 'tool' is not one of system, user, assistant"));
  EXPECT_THAT(error(ChatFamily::chatml, {{"user", "a"}, {"system", "b"}}),
              HasSubstr("turn 2: a system turn must come first"));
  EXPECT_THAT(error(ChatFamily::llama2, {{"user", "a"}, {"user", "b"}}),
              HasSubstr("turn 2: the llama2 template needs user and assistant turns to alternate"));
  EXPECT_THAT(error(ChatFamily::mistral, {{"system", "s"}, {"user", "b"}}),
              HasSubstr("turn 1: the mistral template has no system turn"));
  EXPECT_THAT(error(ChatFamily::alpaca, {{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}}),
              HasSubstr("the alpaca template takes one user turn and one assistant turn (4 given)"));
  EXPECT_THAT(error(ChatFamily::llama3, {}), HasSubstr("the conversation has no messages"));
  EXPECT_THROW(recognise_chat_template("{{ messages }}", "", "", "tokenizer_config.json"), UserError);
}

}  // namespace
}  // namespace neftune::data
