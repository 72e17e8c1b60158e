#include "trainer/data/chat_encode.h"

#include <algorithm>

#include "config/errors.h"

namespace neftune::data {
namespace {

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return static_cast<size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin());
}

size_t common_suffix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return static_cast<size_t>(std::mismatch(a.rbegin(), a.rend(), b.rbegin(), b.rend()).first - a.rbegin());
}

// One run of text segments: its text and the byte ranges [begin, end) that are trained.
struct Run {
  std::string text;
  std::vector<std::pair<size_t, size_t>> spans;
};

void encode_run(const tok::Tokenizer& tok, const Run& run, EncodedChat& out) {
  const std::vector<int32_t> ids = tok.encode(run.text, false);
  std::vector<uint8_t> mask(ids.size(), 0);
  for (const auto& [begin, end] : run.spans) {
    // Tokens wholly before `begin` encode the same on their own; so do tokens wholly after `end`.
    const size_t first = begin == 0 ? 0 : common_prefix(tok.encode(run.text.substr(0, begin), false), ids);
    const size_t last =
        end == run.text.size() ? ids.size() : ids.size() - common_suffix(tok.encode(run.text.substr(end), false), ids);
    for (size_t k = first; k < last; ++k) mask[k] = 1;
  }
  out.ids.insert(out.ids.end(), ids.begin(), ids.end());
  out.train.insert(out.train.end(), mask.begin(), mask.end());
}

}  // namespace

std::vector<ChatSegment> select_targets(std::vector<ChatSegment> segments, config::TrainOn train_on) {
  switch (train_on) {
    case config::TrainOn::assistant:
      break;
    case config::TrainOn::all:
      for (ChatSegment& s : segments) s.train = true;
      break;
    case config::TrainOn::last_assistant: {
      // The template's trained segments of one turn are adjacent; turns are separated by untrained ones.
      size_t k = segments.size();
      while (k > 0 && !segments[k - 1].train) --k;
      while (k > 0 && segments[k - 1].train) --k;
      for (size_t i = 0; i < k; ++i) segments[i].train = false;
      break;
    }
  }
  return segments;
}

std::optional<int32_t> special_id(const tok::Tokenizer& tok, const ChatTemplate& t, const std::string& text) {
  const std::vector<int32_t> ids = tok.encode(text, false);
  if (ids.size() == 1) return ids[0];
  if (text == t.bos) {
    if (tok.bos_id() < 0) return std::nullopt;
    return tok.bos_id();
  }
  if (text == t.eos) return tok.eos_id();
  throw UserError("the " + std::string(to_string(t.family)) + " chat template needs the special token " + text +
                  ", which the " + tok.kind() +
                  " tokenizer does not have: set data.chat_template (or --template) to the model's own template (" +
                  chat_family_names() + ")");
}

EncodedChat encode_chat(const tok::Tokenizer& tok, const ChatTemplate& t, const std::vector<ChatSegment>& segments) {
  EncodedChat out;
  Run run;
  auto flush = [&] {
    if (!run.text.empty()) encode_run(tok, run, out);
    run = Run{};
  };
  for (const ChatSegment& s : segments) {
    if (s.special) {
      flush();
      if (const auto id = special_id(tok, t, s.text)) {
        out.ids.push_back(*id);
        out.train.push_back(s.train ? 1 : 0);
      }
      continue;
    }
    const size_t begin = run.text.size();
    run.text += s.text;
    if (!s.train || s.text.empty()) continue;
    if (!run.spans.empty() && run.spans.back().second == begin) {
      run.spans.back().second = run.text.size();
    } else {
      run.spans.emplace_back(begin, run.text.size());
    }
  }
  flush();
  if (!out.train.empty()) out.train[0] = 0;  // nothing predicts the first token
  return out;
}

}  // namespace neftune::data
