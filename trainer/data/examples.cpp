#include "trainer/data/examples.h"

#include <algorithm>

#include "config/errors.h"
#include "trainer/data/chat_encode.h"
#include "trainer/data/chat_examples.h"
#include "trainer/data/conversations.h"
#include "trainer/data/prompt_template.h"
#include "trainer/tokenizer/regex.h"

namespace neftune::data {
namespace {

// An instruction record with the Alpaca prompt, truncated as the header says; nullopt when skipped.
std::optional<Example> alpaca_example(const Record& r, const tok::Tokenizer& tok, int64_t tail, int64_t max_seq_len,
                                      config::TooLong too_long, const std::string& where, TokenizeStats& st) {
  const std::string prompt = format_prompt(r.instruction, r.input);
  std::vector<int32_t> p = tok.encode(prompt, true);
  std::vector<int32_t> full = tok.encode(prompt + r.output, true);
  std::vector<int32_t> resp;
  if (full.size() >= p.size() && std::equal(p.begin(), p.end(), full.begin())) {
    resp.assign(full.begin() + static_cast<std::ptrdiff_t>(p.size()), full.end());
  } else {
    // The tokenizer merged across the prompt/response boundary: tokenize the response on its own.
    resp = tok.encode(r.output, false);
    ++st.boundary_retokenized;
  }
  resp.push_back(tok.eos_id());

  int64_t total = static_cast<int64_t>(p.size() + resp.size());
  if (total > max_seq_len) {
    if (too_long == config::TooLong::error) {
      throw DataError(where + ": " + std::to_string(total) + " tokens exceed data.max_seq_len " +
                      std::to_string(max_seq_len) + " (raise it, or set data.too_long: truncate | skip)");
    }
    if (too_long == config::TooLong::skip) {
      ++st.skipped_too_long;
      return std::nullopt;
    }
    // Cut the prompt from its start (after BOS), keeping at least the template tail.
    const int64_t keep_min = std::min<int64_t>(tail, static_cast<int64_t>(p.size()) - 1);
    const int64_t cuttable = static_cast<int64_t>(p.size()) - 1 - keep_min;
    const int64_t cut = std::min(cuttable, total - max_seq_len);
    p.erase(p.begin() + 1, p.begin() + 1 + cut);
    total -= cut;
    if (total > max_seq_len) {
      const int64_t room = max_seq_len - static_cast<int64_t>(p.size());
      if (room < 1) {
        ++st.skipped_too_long;
        return std::nullopt;
      }
      resp.resize(static_cast<size_t>(room));
      ++st.truncated_response;
    } else {
      ++st.truncated_prompt;
    }
  }
  Example e;
  e.ids = std::move(p);
  e.ids.insert(e.ids.end(), resp.begin(), resp.end());
  e.set_prompt_length(static_cast<int64_t>(e.ids.size() - resp.size()));
  return e;
}

}  // namespace

int64_t Example::n_targets() const {
  if (train.size() < 2) return 0;
  return static_cast<int64_t>(std::count_if(train.begin() + 1, train.end(), [](uint8_t m) { return m != 0; }));
}

void Example::set_prompt_length(int64_t n) {
  const size_t k = std::min(static_cast<size_t>(std::max<int64_t>(n, 0)), ids.size());
  train.assign(ids.size(), 1);
  std::fill(train.begin(), train.begin() + static_cast<std::ptrdiff_t>(k), 0);
}

std::vector<int32_t> prompt_ids(const tok::Tokenizer& tok, const std::string& instruction, const std::string& input) {
  return tok.encode(format_prompt(instruction, input), /*add_bos=*/true);
}

std::vector<Example> make_examples(const std::vector<Record>& records, const tok::Tokenizer& tok,
                                   const TokenizeOptions& options, const std::string& source, TokenizeStats* stats,
                                   const std::function<bool()>& stop) {
  TokenizeStats local;
  TokenizeStats& st = stats ? *stats : local;
  const auto& chat = options.chat_template;
  // Instruction records keep the Alpaca prompt without a chat template and under the alpaca one.
  const bool alpaca_prompt = !chat || chat->family == ChatFamily::alpaca;
  if (chat) {
    // A template whose special tokens the tokenizer lacks fails here, once, not as a fault of each record.
    Conversation probe;
    probe.messages = {{"user", "a"}, {"assistant", "b"}};
    encode_chat(tok, *chat, render_chat(*chat, probe, source));
  }
  const int64_t tail = static_cast<int64_t>(tok.encode(kResponseTail, false).size());
  std::vector<Example> out;
  out.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    if (stop && i % 256 == 0 && stop()) {
      throw StopRequested(source + ": stop requested while tokenizing (record " + std::to_string(i) + " of " +
                          std::to_string(records.size()) + "): exiting before training, nothing to save");
    }
    const Record& r = records[i];
    const std::string where = source + ": " + record_location(r, i);
    std::optional<Example> e;
    // A tokenizer pattern that backtracks without end on this record's text: the tokenizer's fault, so
    // named with the record but never skipped as a malformed record.
    if (!r.is_conversation() && alpaca_prompt) {
      try {
        e = alpaca_example(r, tok, tail, options.max_seq_len, options.too_long, where, st);
      } catch (const tok::RegexError& err) {
        throw DataError(where + ": " + err.what());
      }
    } else if (!chat) {
      throw DataError(where + ": a conversation needs a chat template: set data.chat_template (" + chat_family_names() +
                      ")");
    } else {
      try {
        e = conversation_example(tok, *chat, options.train_on,
                                 r.is_conversation() ? Conversation{r.messages, false} : instruction_conversation(r),
                                 options.max_seq_len, options.too_long, where, st);
      } catch (const DataError&) {
        throw;
      } catch (const tok::RegexError& err) {
        throw DataError(where + ": " + err.what());
      } catch (const UserError& err) {  // what the template cannot render
        if (options.on_malformed != config::OnMalformed::skip)
          throw DataError(std::string(err.what()) + " (fix the record or set data.on_malformed: skip)");
        ++st.skipped_malformed;
      }
    }
    if (e) out.push_back(std::move(*e));
  }
  if (out.empty()) {
    throw DataError(source + ": no examples left after tokenization (" + std::to_string(st.skipped_too_long) +
                    " skipped as longer than data.max_seq_len " + std::to_string(options.max_seq_len) +
                    (st.skipped_malformed
                         ? ", " + std::to_string(st.skipped_malformed) + " the chat template cannot render"
                         : std::string()) +
                    ")");
  }
  return out;
}

std::vector<Example> make_examples(const std::vector<Record>& records, const tok::Tokenizer& tok, int64_t max_seq_len,
                                   config::TooLong too_long, const std::string& source, TokenizeStats* stats,
                                   const std::function<bool()>& stop) {
  TokenizeOptions o;
  o.max_seq_len = max_seq_len;
  o.too_long = too_long;
  return make_examples(records, tok, o, source, stats, stop);
}

}  // namespace neftune::data
