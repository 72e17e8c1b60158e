#include "trainer/data/chat_examples.h"

#include <algorithm>

#include "trainer/data/chat_encode.h"

namespace neftune::data {

std::optional<Example> conversation_example(const tok::Tokenizer& tok, const ChatTemplate& t, config::TrainOn train_on,
                                            const Conversation& c, int64_t max_seq_len, config::TooLong too_long,
                                            const std::string& where, TokenizeStats& stats) {
  const size_t first = !c.messages.empty() && c.messages[0].role == "system" ? 1 : 0;
  const size_t exchanges = (c.messages.size() - first) / 2;
  // The conversation without its first `dropped` exchanges (the system turn stays).
  auto encode_without = [&](size_t dropped) {
    Conversation part;
    part.messages.assign(c.messages.begin(), c.messages.begin() + static_cast<std::ptrdiff_t>(first));
    part.messages.insert(part.messages.end(), c.messages.begin() + static_cast<std::ptrdiff_t>(first + 2 * dropped),
                         c.messages.end());
    return encode_chat(tok, t, select_targets(render_chat(t, part, where), train_on));
  };
  const auto fits = [&](const EncodedChat& e) { return static_cast<int64_t>(e.ids.size()) <= max_seq_len; };

  EncodedChat e = encode_without(0);
  if (!fits(e)) {
    if (too_long == config::TooLong::error) {
      throw DataError(where + ": " + std::to_string(e.ids.size()) + " tokens exceed data.max_seq_len " +
                      std::to_string(max_seq_len) + " (raise it, or set data.too_long: truncate | skip)");
    }
    if (too_long == config::TooLong::skip) {
      ++stats.skipped_too_long;
      return std::nullopt;
    }
    // The fewest dropped exchanges that fit: a binary search (dropping more never makes it longer).
    size_t lo = 1, hi = exchanges > 0 ? exchanges - 1 : 0;
    std::optional<EncodedChat> best;
    while (lo <= hi) {
      const size_t mid = lo + (hi - lo) / 2;
      EncodedChat m = encode_without(mid);
      if (fits(m)) {
        best = std::move(m);
        hi = mid - 1;
      } else {
        lo = mid + 1;
      }
    }
    if (best) {
      e = std::move(*best);
      ++stats.dropped_turns;
    } else {
      if (exchanges > 1) e = encode_without(exchanges - 1);
      e.ids.resize(static_cast<size_t>(max_seq_len));
      e.train.resize(static_cast<size_t>(max_seq_len));
      if (std::count(e.train.begin(), e.train.end(), 1) == 0) {
        ++stats.skipped_too_long;  // the cut took every target
        return std::nullopt;
      }
      ++stats.cut_last_turn;
    }
  }
  Example ex;
  ex.ids = std::move(e.ids);
  ex.train = std::move(e.train);
  ++stats.conversations;
  return ex;
}

}  // namespace neftune::data
